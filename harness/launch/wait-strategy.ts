// One family of readiness checks for anything eppkit launches (process or container), after
// testcontainers' wait strategies: each says what it waits for, has a timeout (its own, else the
// launch's), stops early when the target exits or the run is cancelled, and they compose.
//
//   Wait.forLogLine(/grpc listening on \S+:(\d+)/)                   -> the match
//   Wait.forAll(Wait.forPidFile(pidFile), Wait.forTcp(host, port))   -> [undefined, undefined]
//   Wait.forHttp('http://127.0.0.1:9901/ready', { status: 200 }).withTimeout(5000)
//
// A failure is a WaitTimeout or a WaitExited (or WaitAborted), which launch() turns into
// EPPKIT_START_FAILED with the output's tail; callers with their own wording (plane files)
// catch them and say it their way.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { EppkitError } from '../../core/errors.ts';
import { canConnect } from '../../core/net.ts';

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** What a wait can look at: the launched thing. */
export interface WaitTarget {
  readonly what: string;
  readonly running: boolean;
  /** The pid on this host when eppkit started it as a child (undefined in a container). */
  readonly pid: number | undefined;
  readonly exited: Promise<ExitStatus | undefined>;
  /** Everything it printed so far (stdout and stderr). */
  logs(): string;
  /** The first output line matching `re` (a process: stdout; a container: both), seen or to come. */
  nextLine(re: RegExp): Promise<RegExpMatchArray>;
}

/** A target that is nothing eppkit started (a plane already running at a URL): never exits. */
export const NO_PROCESS: WaitTarget = {
  what: 'nothing started',
  running: true,
  pid: undefined,
  exited: new Promise(() => {}),
  logs: () => '',
  nextLine: () => new Promise(() => {}),
};

export class WaitTimeout extends Error {
  readonly description: string;
  readonly ms: number;
  readonly last: string | undefined;
  constructor(description: string, ms: number, last: string | undefined) {
    super(`not ready within ${ms} ms (waited for ${description}${last ? `; last: ${last}` : ''})`);
    this.description = description;
    this.ms = ms;
    this.last = last;
  }
}

export class WaitExited extends Error {
  readonly description: string;
  readonly status: ExitStatus | undefined;
  constructor(description: string, status: ExitStatus | undefined) {
    super(`exited (${exitText(status)}) before it was ready (waited for ${description})`);
    this.description = description;
    this.status = status;
  }
}

export class WaitAborted extends Error {
  readonly description: string;
  constructor(description: string) {
    super(`cancelled while waiting for ${description}`);
    this.description = description;
  }
}

export function exitText(x: ExitStatus | undefined): string {
  return x?.signal ?? (x?.code !== null && x?.code !== undefined ? `code ${x.code}` : 'unknown status');
}

/** What a probe saw: ready with a value, or not yet and why (shown when it times out). */
export type Probe<T> = { ready: true; value: T } | { ready: false; last?: string };

export abstract class WaitStrategy<T = void> {
  /** Says what it waits for, for messages ("a TCP connect to 127.0.0.1:8080"). */
  abstract readonly description: string;
  private ownTimeoutMs: number | undefined;

  /** This wait's own deadline; default: the one it is given (the launch's startup timeout). */
  withTimeout(ms: number): this {
    this.ownTimeoutMs = ms;
    return this;
  }

  get timeoutMs(): number | undefined {
    return this.ownTimeoutMs;
  }

  /** Waits until ready; `signal` ends the wait early (the wait is over, or the run was cancelled). */
  protected abstract run(target: WaitTarget, signal: AbortSignal, last: { text?: string }): Promise<T>;

  /**
   * Resolves with what the wait found; rejects with WaitTimeout, WaitExited (the target ended
   * first) or WaitAborted (`opts.signal`).
   */
  async waitUntilReady(target: WaitTarget, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const ms = this.ownTimeoutMs ?? opts.timeoutMs ?? 20_000;
    const inner = new AbortController();
    const last: { text?: string } = {};
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => inner.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const failures = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WaitTimeout(this.description, ms, last.text)), ms);
      void target.exited.then((x) => reject(new WaitExited(this.description, x)));
      if (opts.signal?.aborted) reject(new WaitAborted(this.description));
      opts.signal?.addEventListener('abort', () => reject(new WaitAborted(this.description)), { once: true });
    });
    failures.catch(() => undefined);
    try {
      if (!target.running) throw new WaitExited(this.description, await target.exited);
      return await Promise.race([this.run(target, inner.signal, last), failures]);
    } finally {
      clearTimeout(timer);
      inner.abort();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Asks `probe` every `intervalMs` until it says ready (or the wait is ended from outside). */
export class PollingWait<T> extends WaitStrategy<T> {
  readonly description: string;
  private readonly probe: (target: WaitTarget, signal: AbortSignal) => Promise<Probe<T>>;
  private readonly intervalMs: number;
  constructor(description: string, probe: (target: WaitTarget, signal: AbortSignal) => Promise<Probe<T>>, intervalMs = 50) {
    super();
    this.description = description;
    this.probe = probe;
    this.intervalMs = intervalMs;
  }

  protected async run(target: WaitTarget, signal: AbortSignal, last: { text?: string }): Promise<T> {
    while (!signal.aborted) {
      try {
        const p = await this.probe(target, signal);
        if (p.ready) return p.value;
        if (p.last !== undefined) last.text = p.last;
      } catch (e) {
        last.text = (e as Error).message;
      }
      await sleep(this.intervalMs, undefined, { signal }).catch(() => undefined);
    }
    // Ended from outside: the caller already has its answer (a timeout, an exit).
    return new Promise<never>(() => {});
  }
}

class LogLineWait extends WaitStrategy<RegExpMatchArray> {
  readonly description: string;
  private readonly re: RegExp;
  constructor(re: RegExp) {
    super();
    this.re = re;
    this.description = `a line matching /${re.source}/`;
  }
  protected run(target: WaitTarget): Promise<RegExpMatchArray> {
    return target.nextLine(this.re);
  }
}

type Results<S extends readonly WaitStrategy<unknown>[]> = { -readonly [K in keyof S]: S[K] extends WaitStrategy<infer R> ? R : never };

class AllWait<S extends readonly WaitStrategy<unknown>[]> extends WaitStrategy<Results<S>> {
  readonly description: string;
  private readonly waits: S;
  constructor(waits: S) {
    super();
    this.waits = waits;
    this.description = waits.map((w) => w.description).join(', then ');
  }
  protected run(target: WaitTarget, signal: AbortSignal): Promise<Results<S>> {
    return this.waitUntilReady(target, { signal });
  }

  // In order, each with its own timeout or what is left of the overall one; the parts report
  // their own failure (which of them timed out), the whole only bounds them.
  override async waitUntilReady(target: WaitTarget, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Results<S>> {
    const ms = this.timeoutMs ?? opts.timeoutMs ?? 20_000;
    const deadline = Date.now() + ms;
    const out: unknown[] = [];
    for (const w of this.waits) {
      const left = Math.max(1, deadline - Date.now());
      out.push(await w.waitUntilReady(target, { timeoutMs: Math.min(w.timeoutMs ?? left, left), ...(opts.signal ? { signal: opts.signal } : {}) }));
    }
    return out as Results<S>;
  }
}

function assertLoopback(host: string, what: string): void {
  if (!/^127\.|^\[?::1\]?$|^localhost$/.test(host)) throw new EppkitError('EPPKIT_USAGE', { reason: `${what} must be on loopback (got ${host})` });
}

function readIfExists(file: string): string | undefined {
  try {
    return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

async function httpGet(url: string, signal: AbortSignal, timeoutMs = 1000): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
  return { status: res.status, text: await res.text() };
}

export interface EnvoyAdminReady {
  adminUrl: string;
  /** The bound port of each listener asked for, in order. */
  ports: number[];
}

export const Wait = {
  /** A line of its output matching `re` (a process: stdout; a container: stdout+stderr); resolves with the match. */
  forLogLine(re: RegExp): WaitStrategy<RegExpMatchArray> {
    return new LogLineWait(re);
  },

  /** `re` found in its whole output so far (stdout+stderr), or, with `file`, in that file. */
  forText(re: RegExp, file?: string): WaitStrategy<void> {
    return new PollingWait(`a line matching /${re.source}/ in ${file ?? 'its output'}`, async (t) =>
      re.test((file ? readIfExists(file) : t.logs()) ?? '') ? { ready: true, value: undefined } : { ready: false },
    );
  },

  /** A TCP connect to host:port (loopback) succeeds: servers that print nothing (nginx). */
  forTcp(host: string, port: number): WaitStrategy<void> {
    assertLoopback(host, 'a readiness address');
    return new PollingWait(`a TCP connect to ${host}:${port}`, async () => ((await canConnect(host, port)) ? { ready: true, value: undefined } : { ready: false, last: 'connection refused' }));
  },

  /** GET `url` (loopback) answers, any status or the one given. */
  forHttp(url: string, opts: { status?: number | 'any' } = {}): WaitStrategy<void> {
    assertLoopback(new URL(url).hostname, 'a readiness URL');
    const want = opts.status ?? 'any';
    return new PollingWait(
      `GET ${url} answering ${want === 'any' ? 'any status' : want}`,
      async (_t, signal) => {
        const r = await httpGet(url, signal);
        return want === 'any' || r.status === want ? { ready: true, value: undefined } : { ready: false, last: `status ${r.status}` };
      },
      100,
    );
  },

  /** The pid file exists and (for a local child) names it: nginx writes it once it has bound its ports. */
  forPidFile(file: string): WaitStrategy<void> {
    return new PollingWait(`its pid file ${file}`, async (t) => {
      const text = readIfExists(file);
      if (text === undefined) return { ready: false, last: 'not written yet' };
      // In a container the pid is of another namespace: existence is all we can check.
      if (t.pid !== undefined && text.trim() !== String(t.pid)) return { ready: false, last: `names pid ${text.trim()}, not ${t.pid}` };
      return { ready: true, value: undefined };
    });
  },

  /**
   * Envoy: its admin address file (--admin-address-path) written, /ready answering 200, and
   * each named listener bound; resolves with the admin URL and the listeners' ports.
   */
  forEnvoyAdmin(adminAddressFile: string, listenerNames: readonly string[]): WaitStrategy<EnvoyAdminReady> {
    return new PollingWait(`Envoy's admin (${adminAddressFile}, then /ready 200 and listeners ${listenerNames.join(', ')} bound)`, async (_t, signal) => {
      const addr = readIfExists(adminAddressFile)?.trim();
      if (!addr) return { ready: false, last: 'admin address file not written yet' };
      const adminUrl = `http://${addr}`;
      const ready = await httpGet(`${adminUrl}/ready`, signal, 2000);
      if (ready.status !== 200) return { ready: false, last: `/ready answered ${ready.status}: ${ready.text.trim()}` };
      const listeners = JSON.parse((await httpGet(`${adminUrl}/listeners?format=json`, signal, 2000)).text) as {
        listener_statuses?: Array<{ name?: string; local_address?: { socket_address?: { port_value?: number } } }>;
      };
      const ports = listenerNames.map((n) => listeners.listener_statuses?.find((x) => x.name === n)?.local_address?.socket_address?.port_value ?? 0);
      return ports.every((p) => p > 0) ? { ready: true, value: { adminUrl, ports } } : { ready: false, last: 'listener has no port yet' };
    });
  },

  /** Every wait, in order; resolves with each one's result. */
  forAll<S extends readonly WaitStrategy<unknown>[]>(...waits: S): WaitStrategy<Results<S>> {
    return new AllWait(waits);
  },

  /** Anything else, polled every `intervalMs`: `probe` says ready (with a value) or why not yet. */
  until<T>(description: string, probe: (target: WaitTarget, signal: AbortSignal) => Promise<Probe<T>>, intervalMs = 50): WaitStrategy<T> {
    return new PollingWait(description, probe, intervalMs);
  },
};

/**
 * A wait's failure as the user reads it: EPPKIT_START_FAILED naming what did not start, what it
 * waited for, and the end of its output (plus `extra`, e.g. nginx's error.log). Other errors
 * pass through.
 */
export function startFailed(target: { what: string; tail(chars: number): string }, e: unknown, extra = ''): unknown {
  if (!(e instanceof WaitTimeout || e instanceof WaitExited || e instanceof WaitAborted)) return e;
  const output = target.tail(2000);
  return new EppkitError('EPPKIT_START_FAILED', { what: target.what, reason: `${e.message}${output ? `; output:\n${output}` : ''}${extra}` });
}
