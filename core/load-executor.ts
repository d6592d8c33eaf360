// The executor step of eppkit's load pipeline (k6's model: parse → executor → histogram →
// thresholds → report): WHEN iterations start and WHICH of them count, apart from WHAT an
// iteration sends. `eppkit bench` (an HTTP request per iteration, harness/bench/load-worker.ts)
// and the mock EPP's ext_proc load client (a gRPC stream per iteration,
// mock-epp/load/ext-proc-load-worker.ts) both run their protocol under this one scheduler and
// return the same Tally, merged by mergeTallies (core/load-tally.ts). The compiled clients
// (proxies/nginx-epp/bench-tools) implement the same rules and return the same Tally.
import { performance } from 'node:perf_hooks';
import { createHistogram, encodeHistogram, recordMicros } from './latency-histogram.ts';
import type { Tally } from './load-tally.ts';

export const EXECUTORS = ['constant-vus', 'constant-arrival-rate', 'burst'] as const;
export type Executor = (typeof EXECUTORS)[number];

/** The burst executor starts a burst this often (when the previous one is over). */
export const BURST_INTERVAL_MS = 1000;

/** Error kind of an iteration still in flight when the window (plus grace) closed: a timeout, never silence. */
export const IN_FLIGHT_AT_CLOSE = 'timeout (in flight at window close)';

/** How long after the window closes iterations still in flight may finish before they count as timeouts. */
export function closeGraceMs(timeoutMs: number): number {
  return Math.min(timeoutMs, 5000);
}

export interface ExecutorPlan {
  executor: Executor;
  /**
   * constant-vus: virtual users, each starting its next iteration when the last one ended;
   * constant-arrival-rate: the most iterations in flight (one more due is dropped, k6's dropped
   * iterations); burst: iterations started together every BURST_INTERVAL_MS.
   */
  slots: number;
  /** Iterations per second (constant-arrival-rate). */
  rate?: number;
  warmupMs: number;
  durationMs: number;
  /** Per-iteration timeout of the protocol: bounds the wait for iterations in flight at window close. */
  timeoutMs: number;
  /** Stop starting iterations after this many (warm-up included): the soak form. */
  maxIterations?: number;
  /** Called every 500 ms with the iterations ended so far (warm-up included). */
  onProgress?: (iterations: number) => void;
}

/**
 * One iteration's outcome from the protocol layer: answered (an HTTP status, or none for a
 * protocol without one), or no answer, by kind. `doneAt` (performance.now()) when the answer
 * that counts came before the iteration ended (the last expected ext_proc message before the
 * stream closed); otherwise the iteration's end is its latency's end.
 */
export type Outcome = { status?: number; bytes?: number; doneAt?: number } | { error: string };

/** Runs `fire` on the plan's schedule; only iterations whose (intended) start falls in the window count. */
export async function runExecutor(plan: ExecutorPlan, fire: () => Promise<Outcome>): Promise<Tally> {
  const hist = createHistogram();
  const statusCodes: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  let requests = 0;
  let non2xx = 0;
  let errors = 0;
  let dropped = 0;
  let bytes = 0;
  let lastEnd = 0;
  let iterations = 0;
  let started = 0;
  let inFlightAtClose = 0;
  const maxIterations = plan.maxIterations ?? Number.POSITIVE_INFINITY;
  const error = (kind: string): void => {
    errors++;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  };

  const startAt = performance.now();
  const measureFrom = startAt + plan.warmupMs;
  const stopAt = measureFrom + plan.durationMs;
  const progress = plan.onProgress ? setInterval(() => plan.onProgress?.(iterations), 500) : undefined;

  // Every iteration started and not yet accounted: at window close (+ grace) the rest count as timeouts.
  const open = new Map<number, number>();
  let openSeq = 0;
  let closed = false;

  // Latency runs from the intended start (for arrival rate the scheduled time, so a stalled
  // server is not hidden: no coordinated omission).
  const account = (intendedStart: number, o: Outcome): void => {
    iterations++;
    if (closed || intendedStart < measureFrom || intendedStart >= stopAt) return;
    const end = performance.now();
    lastEnd = Math.max(lastEnd, end);
    if ('error' in o) return error(o.error);
    requests++;
    bytes += o.bytes ?? 0;
    if (o.status !== undefined) {
      statusCodes[o.status] = (statusCodes[o.status] ?? 0) + 1;
      if (o.status < 200 || o.status > 299) non2xx++;
    }
    recordMicros(hist, ((o.doneAt ?? end) - intendedStart) * 1000);
  };
  const tracked = async (intended: number): Promise<void> => {
    started++;
    const id = ++openSeq;
    open.set(id, intended);
    const o = await fire();
    open.delete(id);
    account(intended, o);
  };

  /** Waits for `p`, but no longer than the window's end plus the grace; then the rest are timeouts. */
  const untilClosed = async (p: Promise<unknown>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, stopAt + closeGraceMs(plan.timeoutMs) - performance.now()));
    });
    await Promise.race([p, grace]);
    clearTimeout(timer);
    // Sent during the warmup counts too: an iteration that blocked its slot through the whole
    // window is the plainest sign of a hang.
    for (const s of open.values()) {
      if (s >= stopAt) continue;
      inFlightAtClose++;
      error(IN_FLIGHT_AT_CLOSE);
    }
    open.clear();
    closed = true;
  };

  if (plan.executor === 'burst') {
    // Every second (or as soon as the last one is over), `slots` iterations at once: what a
    // plane must absorb when a crowd arrives together.
    while (performance.now() < stopAt && started < maxIterations) {
      const t = performance.now();
      const n = Math.min(plan.slots, maxIterations - started);
      started += n;
      await Promise.all(Array.from({ length: n }, () => fire().then((o) => account(t, o))));
      // The next burst starts one interval after this one started, if that is still in the window.
      if (t + BURST_INTERVAL_MS >= stopAt) break;
      const wait = t + BURST_INTERVAL_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  } else if (plan.executor === 'constant-vus') {
    const vu = async (): Promise<void> => {
      while (performance.now() < stopAt && !closed && started < maxIterations) await tracked(performance.now());
    };
    await untilClosed(Promise.all(Array.from({ length: plan.slots }, vu)));
  } else {
    const interval = 1000 / (plan.rate ?? 1);
    let inFlight = 0;
    const pending = new Set<Promise<void>>();
    await new Promise<void>((resolve) => {
      let next = startAt;
      const tick = (): void => {
        const now = performance.now();
        while (next <= now && next < stopAt && started < maxIterations) {
          const intended = next;
          next += interval;
          if (inFlight >= plan.slots) {
            if (intended >= measureFrom) dropped++;
            continue;
          }
          inFlight++;
          const p = tracked(intended).then(() => {
            inFlight--;
          });
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        if (next >= stopAt || started >= maxIterations) return resolve();
        setTimeout(tick, Math.max(0, next - performance.now()));
      };
      tick();
    });
    await untilClosed(Promise.all(pending));
  }
  if (progress) clearInterval(progress);

  // A run cut short by maxIterations lasted until its last answer; a full one at least the window.
  const endedEarly = started >= maxIterations && lastEnd < stopAt;
  const elapsedMs = Math.max(0, endedEarly ? lastEnd - measureFrom : Math.max(plan.durationMs, lastEnd - measureFrom));
  const tally: Tally = {
    histogram: encodeHistogram(hist),
    requests,
    statusCodes,
    non2xx,
    errors,
    errorKinds,
    dropped,
    bytes,
    elapsedMs,
    inFlightAtClose,
    iterations,
  };
  hist.destroy();
  return tally;
}
