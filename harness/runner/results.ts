// What a run produces, scenario by data plane. results.json is this, minus nothing: its
// required keys (name, dataPlane, status, durationMs, reason?) are read by other tools.
import type { AppliedOverride, Coverage } from './coverage.ts';
import type { Mismatch } from './expectations.ts';

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
  /** The EPP journal entry of the failing request (or the last of the step). */
  journalEntry?: unknown;
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
  eppServiceTimeMs?: LatencySummary;
  failure?: FailureDetail;
  /** Where this scenario's logs were kept (relative to the report directory). */
  logDir?: string;
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

/** Nearest-rank percentiles; undefined for no samples. */
export function latencySummary(samples: readonly number[]): LatencySummary | undefined {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { count: s.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? 0) };
}
