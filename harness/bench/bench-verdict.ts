// Whether a bench target's numbers may be believed. A plane that crashed, hung or failed most
// requests produces numbers too (0 req/s, a negative hop, a p50 of the few that got through);
// they are reported, but the target is failed with the reason, so `ok` is false and the exit
// code 1, whatever the thresholds say.
import type { PlaneFootprint } from '../runner/results.ts';
import { leakFinding } from '../runner/results.ts';
import { healthReason, type PlaneHealth } from '../data-planes/plane-health.ts';
import type { LoadResult } from './load-client.ts';

/** Default --max-error-ratio: requests without an HTTP answer (reset, refused, timeout, in flight at close) over all sent. */
export const DEFAULT_MAX_ERROR_RATIO = 0.01;

/**
 * Growth of a plane over one bench target beyond which it is a leak (warning; failure with
 * --strict). Sampled after the smoke request and after the window with its connections closed:
 * per-worker pools and allocator arenas that grew under load stay well below.
 */
export const BENCH_LEAK_BOUNDS = { fds: 128, rssBytes: 256 * 1024 * 1024 } as const;

export interface TargetJudgement {
  /** Why the target fails (first problem first), or undefined. */
  failed?: string;
  /** Why it does not fail but should be read with care (a leak without --strict). */
  warnings: string[];
}

export interface JudgeInput {
  load: LoadResult;
  maxErrorRatio: number;
  health?: PlaneHealth;
  footprint?: { before: PlaneFootprint; after: PlaneFootprint };
  /** Client connections of the load: the plane may keep one idle upstream connection per each. */
  connections?: number;
  strict?: boolean;
}

const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

export function judgeTarget(x: JudgeInput): TargetJudgement {
  const problems: string[] = [];
  const warnings: string[] = [];
  const l = x.load;
  const kinds = Object.entries(l.errorKinds)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  // A crash first: it explains the errors.
  if (x.health && !x.health.ok) problems.push(healthReason(x.health) ?? 'data plane unhealthy');
  const sent = l.requests + l.errors;
  if (l.requests === 0) problems.push(`no request completed in the window (${l.errors} without an answer${kinds ? `: ${kinds}` : ''})`);
  else if (sent > 0 && l.errors / sent > x.maxErrorRatio) {
    problems.push(`error ratio ${pct(l.errors / sent)} (${l.errors} of ${sent}: ${kinds}) over the limit ${pct(x.maxErrorRatio)}`);
  }
  if (x.footprint) {
    // A plane's upstream keep-alive pool grows to the concurrency it saw (node-proxy keeps ~200
    // idle sockets to the backend after a 200-connection burst): bounded, not a leak.
    const bounds = { ...BENCH_LEAK_BOUNDS, fds: BENCH_LEAK_BOUNDS.fds + (x.connections ?? 0) };
    const leak = leakFinding(x.footprint.before, x.footprint.after, bounds);
    if (leak && x.strict) problems.push(`${leak} over the target (--strict)`);
    else if (leak) warnings.push(`${leak} over the target (a failure with --strict)`);
  }
  return problems.length ? { failed: problems.join('; '), warnings } : { warnings };
}

/**
 * EPP hop cost: the plane's p50 − direct's p50, only when both are valid (answers completed, target
 * not failed). Negative means the noise is larger than the hop: null with that reason, never a
 * negative cost.
 */
export function hopCost(plane: { load?: LoadResult; failed?: string }, direct: { load?: LoadResult; failed?: string } | undefined): { hopMs: number | null; hopNote?: string } {
  if (!direct) return { hopMs: null, hopNote: 'no direct baseline in this run' };
  if (!direct.load || direct.failed || direct.load.requests === 0) return { hopMs: null, hopNote: 'the direct baseline has no valid latencies' };
  if (!plane.load || plane.failed || plane.load.requests === 0) return { hopMs: null, hopNote: 'the target failed: its latencies are not a hop cost' };
  const hop = Math.round((plane.load.latencyMs.p50 - direct.load.latencyMs.p50) * 1000) / 1000;
  if (hop < 0) return { hopMs: null, hopNote: `p50 below direct's by ${-hop} ms: the noise of this run is larger than the hop; re-run on a quieter machine` };
  return { hopMs: hop };
}
