// `eppkit fuzz` watches its own resident memory: a run that grows without bound (a leak in
// the harness, the mock or a library it uses) stops with a clear error and its planes stopped,
// before the machine's OOM killer picks a victim (which may be someone else's process, and
// leaves the planes orphaned). The check runs on the event loop, so it catches gradual growth;
// growth inside one synchronous native call never yields to it, and is the watchdog's job
// (harness/fuzz/fuzz-watchdog.ts).
import { totalmem } from 'node:os';
import { EppkitError } from '../../core/errors.ts';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** "4g", "512MiB", "1.5GB", "800000000" -> bytes (binary units). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s.trim());
  const mult = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || mult === undefined) throw new EppkitError('EPPKIT_USAGE', { reason: `not a size: "${s}" (use 4g, 512m or a number of bytes)` });
  return Math.round(Number(m[1]) * mult);
}

/** Default RSS limit: a quarter of the machine's memory, at most 4 GiB (a fuzz run needs a few hundred MiB). */
export function defaultRssLimit(total = totalmem()): number {
  return Math.min(4 * 1024 ** 3, Math.floor(total / 4));
}

export interface MemoryGuardOptions {
  limitBytes: number;
  /** Called once, on the first sample over the limit, with that sample. */
  onExceeded: (rssBytes: number) => void;
  intervalMs?: number;
  /** The sampler (tests inject one). Default process.memoryUsage.rss. */
  sample?: () => number;
}

export interface MemoryGuard {
  /** Highest sample so far, bytes. */
  readonly peak: number;
  stop(): void;
}

/** Samples RSS every intervalMs (default 500) until stop(); the timer never keeps the process alive. */
export function watchMemory(o: MemoryGuardOptions): MemoryGuard {
  const sample = o.sample ?? (() => process.memoryUsage.rss());
  let peak = 0;
  let fired = false;
  const t = setInterval(() => {
    const rss = sample();
    if (rss > peak) peak = rss;
    if (rss > o.limitBytes && !fired) {
      fired = true;
      clearInterval(t);
      o.onExceeded(rss);
    }
  }, o.intervalMs ?? 500);
  t.unref();
  return {
    get peak() {
      return peak;
    },
    stop: () => clearInterval(t),
  };
}

export const MiB = (bytes: number): number => Math.round(bytes / 1024 ** 2);
