// What one executor run (core/load-executor.ts, or a compiled client following the same rules)
// hands back, and the one merge of several of them: counters add up, percentiles come from the
// sum of the raw HDR histograms, never from averaged percentiles. Used by `eppkit bench`'s load
// client (worker processes) and the mock EPP's ext_proc load client (worker threads).
import { encodeHistogram, mergeHistograms, summarize, type LatencySummary } from './latency-histogram.ts';

export interface Tally {
  /**
   * Compressed base64 HDR histogram of latencies in µs (every answered iteration of the window):
   * what `eppkit bench merge` adds up, so percentiles of several shards come from one histogram.
   */
  histogram: string;
  /** Iterations of the window answered (any HTTP status, or a served stream). */
  requests: number;
  statusCodes: Record<string, number>;
  non2xx: number;
  /** Iterations of the window without an answer (reset, refused, timeout, in flight at close), by kind. */
  errors: number;
  errorKinds: Record<string, number>;
  /** Arrival rate only: iterations of the window not started because every slot was busy. */
  dropped: number;
  bytes: number;
  /** The measured window: at least its duration, up to the last answer of an iteration it started. */
  elapsedMs: number;
  /** Iterations still unanswered when the window (plus grace) closed: counted in errors as timeouts. */
  inFlightAtClose: number;
  /** Iterations ended in total, warm-up included (what a server's CPU over the whole run divides by). */
  iterations: number;
}

export interface MergedTally extends Omit<Tally, 'histogram'> {
  latencyMs: LatencySummary;
  histogram: string;
}

/** Adds up counters by key. */
export function addCounts(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
}

/** One tally of several that ran at the same time (workers of one client): the window is the longest. */
export function mergeTallies(tallies: readonly Tally[]): MergedTally {
  const hist = mergeHistograms(tallies.map((t) => t.histogram));
  const sum = (f: (t: Tally) => number): number => tallies.reduce((a, t) => a + f(t), 0);
  const merged: MergedTally = {
    latencyMs: summarize(hist),
    histogram: encodeHistogram(hist),
    requests: sum((t) => t.requests),
    statusCodes: tallies.reduce((a, t) => addCounts(a, t.statusCodes), {}),
    non2xx: sum((t) => t.non2xx),
    errors: sum((t) => t.errors),
    errorKinds: tallies.reduce((a, t) => addCounts(a, t.errorKinds), {}),
    dropped: sum((t) => t.dropped),
    bytes: sum((t) => t.bytes),
    elapsedMs: Math.max(0, ...tallies.map((t) => t.elapsedMs)),
    inFlightAtClose: sum((t) => t.inFlightAtClose),
    iterations: sum((t) => t.iterations),
  };
  hist.destroy();
  return merged;
}
