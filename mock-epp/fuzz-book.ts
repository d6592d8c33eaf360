// The fuzz mode's script book: case key -> (script, pick), and the records of the streams
// answered with them. `eppkit fuzz` fills it case by case in its own process; a mock started
// from a config with a `fuzz` section (an exported failing case run as a scenario) fills it
// once from the config.
import type { FuzzScript } from './fuzz-script.ts';
import type { FuzzBook, FuzzStreamRecord } from './fuzz-session.ts';

export class FuzzScriptBook implements FuzzBook {
  readonly #cases = new Map<string, { script: FuzzScript; pick: string }>();
  readonly #pool: readonly string[];
  readonly fullDuplex: boolean;
  /** Records of streams since the last clear(), oldest first (bounded). */
  readonly records: FuzzStreamRecord[] = [];
  /** Records ever (streams since start). */
  total = 0;
  #open = 0;
  #waiters: Array<() => void> = [];
  readonly #maxRecords: number;

  constructor(pool: readonly string[], fullDuplex: boolean, maxRecords = 10_000) {
    this.#pool = pool;
    this.fullDuplex = fullDuplex;
    this.#maxRecords = maxRecords;
  }

  set(key: string, script: FuzzScript, pick: string): void {
    this.#cases.set(key, { script, pick });
  }

  /** Forgets every case and record (open streams keep theirs). */
  clear(): void {
    this.#cases.clear();
    this.records.length = 0;
  }

  lookup(key: string | undefined): { script: FuzzScript; pick: string } | undefined {
    return key === undefined ? undefined : this.#cases.get(key);
  }

  defaultPick(): string {
    return this.#pool[0] ?? '127.0.0.1:1';
  }

  opened(r: FuzzStreamRecord): void {
    this.total++;
    this.#open++;
    this.records.push(r);
    if (this.records.length > this.#maxRecords) this.records.shift();
  }

  closed(): void {
    this.#open--;
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  get openStreams(): number {
    return this.#open;
  }

  recordsFor(key: string): FuzzStreamRecord[] {
    return this.records.filter((r) => r.key === key);
  }

  /** Resolves when no stream is open, or after timeoutMs (returns false then). */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#open > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }
}
