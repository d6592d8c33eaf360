// What a run produces, scenario by data plane. results.json is this, minus nothing: its
// required keys (name, dataPlane, status, durationMs, reason?) are read by other tools.
import type { PlaneProblem } from '../data-planes/plane-health.ts';
import type { AppliedOverride, Coverage } from './coverage.ts';
import type { Mismatch } from './expectations.ts';

/** RSS and open fds summed over a data plane's processes at one moment. */
export interface PlaneFootprint {
  rssBytes: number;
  fds: number;
  processes: number;
}

export type ScenarioStatus = 'passed' | 'failed' | 'skipped';

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface StepResult {
  index: number;
  name: string;
  kind: 'request' | 'action';
  status: ScenarioStatus;
  durationMs: number;
  requests?: number;
  /** Client latency of this step's answered requests (report.html plots it per step). */
  latencyMs?: LatencySummary;
  /** With `eventually`: how many times the step ran until it held. */
  attempts?: number;
  statuses?: Record<string, number>;
  servedBy?: Record<string, number>;
  mismatches?: Mismatch[];
  /** A per-data-plane override applied, with its reason. */
  override?: string;
  reason?: string;
}

export interface FailureDetail {
  step: string;
  mismatches: Mismatch[];
  /** The failing request's id (its eppkit-request-id header), when one request is singled out. */
  request?: string;
  /** The EPP journal entry of that request, found by its id; absent when it never reached the EPP. */
  journalEntry?: unknown;
  /** Why no journal entry is shown, when there is none. */
  journalNote?: string;
  dataPlaneLog: string;
  eppLog: string;
}

export interface ScenarioResult {
  name: string;
  dataPlane: string;
  status: ScenarioStatus;
  durationMs: number;
  reason?: string;
  /** A plane's expected difference that made it skip the whole scenario, with its reason. */
  override?: string;
  /** Skipped because the plane lacks these features (coverage: what the plane would need). */
  missingFeatures?: string[];
  file: string;
  description: string;
  tags: string[];
  features: string[];
  steps: StepResult[];
  latencyMs?: LatencySummary;
  /** Client latencies of the scenario's answered requests as a histogram (report.html's distribution plot). */
  latencyHistogram?: LatencyHistogram;
  /** What the mock EPP spent per stream, streams the plane cancelled included (their time until the cancel). */
  eppServiceTimeMs?: LatencySummary;
  /** How many of those streams the plane cancelled before the EPP was done (a timeout, a client gone). */
  eppCancelledStreams?: number;
  failure?: FailureDetail;
  /** Where this scenario's logs were kept (relative to the report directory). */
  logDir?: string;
  /** Crashes, alerts, unexpected exits of the data plane (plane health); present only when there were any. */
  planeProblems?: PlaneProblem[];
  /** The plane's processes right after start and after the last step (leak check). */
  planeFootprint?: { before: PlaneFootprint; after: PlaneFootprint };
  /** What did not fail the scenario but should be looked at (a leak over its bound without --strict). */
  warnings?: string[];
}

/**
 * Growth of a data plane over one scenario beyond which it is reported as a leak: a warning,
 * a failure under --strict. Pools a plane keeps by design (upstream keep-alive per worker, gRPC
 * channels, allocator arenas after an 8 MiB body) stay well below: measured maxima over the
 * catalogue were +66 fds (Envoy's upstream connections in a two-pool scenario) and +29 MiB
 * (node-proxy, 8 MiB body).
 */
export const RUN_LEAK_BOUNDS = { fds: 128, rssBytes: 128 * 1024 * 1024 } as const;

/** A leak finding ("fds 49 → 150 (+101 > 64)"), or undefined within bounds. */
export function leakFinding(before: PlaneFootprint, after: PlaneFootprint, bounds: { fds: number; rssBytes: number }): string | undefined {
  const out: string[] = [];
  const dFds = after.fds - before.fds;
  const dRss = after.rssBytes - before.rssBytes;
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
  if (dFds > bounds.fds) out.push(`open fds ${before.fds} → ${after.fds} (+${dFds} > ${bounds.fds})`);
  if (dRss > bounds.rssBytes) out.push(`RSS ${mib(before.rssBytes)} → ${mib(after.rssBytes)} (+${mib(dRss)} > ${mib(bounds.rssBytes)})`);
  return out.length ? `data plane leak: ${out.join(', ')}` : undefined;
}

export interface RunSummary {
  passed: number;
  failed: number;
  skipped: number;
}

export interface RunReport {
  startedAt: string;
  durationMs: number;
  dataPlanes: Array<{ name: string; description: string; available: boolean; reason?: string; features: string[]; version?: string; planeFile?: string }>;
  runtime: string;
  reportDir: string;
  /** The command line that produced the run (shown in docs/MATRIX.md). */
  command?: string;
  scenarios: ScenarioResult[];
  summary: RunSummary;
  /** Per data plane: how much of the catalogue ran, and why the rest did not (coverage.ts). */
  coverage?: Coverage[];
  /** Every expected difference applied, with its reason. */
  overrides?: AppliedOverride[];
}

export function summarize(results: readonly ScenarioResult[]): RunSummary {
  const s: RunSummary = { passed: 0, failed: 0, skipped: 0 };
  for (const r of results) s[r.status]++;
  return s;
}

/**
 * Latencies in buckets a quarter of an octave wide (upper bounds 2^(k/4) ms): [upper bound ms,
 * count] for each bucket that is not empty, in order. Small enough for results.json whatever the
 * number of requests, fine enough for a distribution plot.
 */
export type LatencyHistogram = Array<[upperMs: number, count: number]>;

export function latencyHistogram(samples: readonly number[]): LatencyHistogram | undefined {
  if (samples.length === 0) return undefined;
  const counts = new Map<number, number>();
  for (const ms of samples) {
    const k = Math.ceil(Math.log2(Math.max(ms, 0.01)) * 4);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.entries()].sort(([a], [b]) => a - b).map(([k, n]) => [Math.round(2 ** (k / 4) * 1000) / 1000, n]);
}

/** Nearest-rank percentiles; undefined for no samples. */
export function latencySummary(samples: readonly number[]): LatencySummary | undefined {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { count: s.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? 0) };
}
