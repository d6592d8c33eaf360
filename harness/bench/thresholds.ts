// The thresholds step of the bench pipeline: k6-style pass/fail expressions evaluated on each
// target's result, e.g. `p99<5`, `rps>=5000`, `errors<0.1%`, `nginx:hop<=1ms`.
// A failed threshold makes `eppkit bench` exit 1 (for users' CI); eppkit's own tests never
// assert on thresholds because timings on a shared machine are not facts.

export const THRESHOLD_METRICS = ['p50', 'p90', 'p99', 'p999', 'max', 'min', 'mean', 'rps', 'requests', 'errors', 'non2xx', 'hop', 'bound', 'blocking'] as const;
export type ThresholdMetric = (typeof THRESHOLD_METRICS)[number];
export const LATENCY_METRICS: ReadonlySet<ThresholdMetric> = new Set(['p50', 'p90', 'p99', 'p999', 'max', 'min', 'mean', 'hop']);

export type ThresholdOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export interface Threshold {
  /** The text as the user wrote it. */
  expr: string;
  /** Only this target (data plane name or `direct`); absent = every target. */
  scope?: string;
  metric: ThresholdMetric;
  op: ThresholdOp;
  /** In the metric's base unit: ms for latencies, req/s, a count, or a fraction when `percent`. */
  value: number;
  /** errors / non2xx given as `N%`: compared with the share of all requests. */
  percent: boolean;
}

/** What a threshold is evaluated on (one target of one run). */
export interface ThresholdSubject {
  target: string;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; min: number; mean: number };
  rps: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** EPP hop cost in ms (target p50 − direct p50); absent for `direct` or without a baseline. */
  hopMs?: number | null;
  /** nonblocking: % of connections / delay achieved, and times the one-blocking-worker rate. */
  boundPct?: number;
  blockingX?: number;
}

export interface ThresholdResult {
  expr: string;
  target: string;
  /** The measured value in the threshold's unit, absent when it cannot be computed. */
  actual?: number;
  ok: boolean;
  note?: string;
}

const RE = /^\s*(?:([A-Za-z0-9_.-]+)\s*:\s*)?([a-z0-9]+)\s*(<=|>=|==|!=|<|>)\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|us|µs|s|%)?\s*$/;

/** Parses one expression; returns the problem as a string when it is not valid. */
export function parseThreshold(expr: string): Threshold | string {
  const m = RE.exec(expr);
  if (!m) return `"${expr}" is not a threshold; write [target:]metric op value, e.g. p99<5, rps>=5000, errors<0.1%`;
  const [, scope, metricText, op, num, unit] = m as unknown as [string, string | undefined, string, ThresholdOp, string, string | undefined];
  const metric = (metricText === 'avg' ? 'mean' : metricText) as ThresholdMetric;
  if (!THRESHOLD_METRICS.includes(metric)) return `unknown metric "${metricText}" in "${expr}"; one of ${THRESHOLD_METRICS.join(', ')}`;
  let value = Number(num);
  let percent = false;
  if (metric === 'bound') {
    // Always a percentage; the % sign is optional.
    if (unit && unit !== '%') return `bound is a percentage of connections / delay; write e.g. bound>=50% in "${expr}"`;
  } else if (unit === '%') {
    if (metric !== 'errors' && metric !== 'non2xx') return `"%" only applies to errors, non2xx and bound, not ${metric} in "${expr}"`;
    percent = true;
    value /= 100;
  } else if (unit) {
    if (!LATENCY_METRICS.has(metric)) return `unit "${unit}" only applies to latency metrics, not ${metric} in "${expr}"`;
    if (unit === 's') value *= 1000;
    else if (unit === 'us' || unit === 'µs') value /= 1000;
  }
  const t: Threshold = { expr: expr.trim(), metric, op, value, percent };
  if (scope) t.scope = scope;
  return t;
}

function compare(a: number, op: ThresholdOp, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

function actualOf(t: Threshold, s: ThresholdSubject): number | undefined {
  switch (t.metric) {
    case 'rps':
      return s.rps;
    case 'requests':
      return s.requests;
    case 'errors':
    case 'non2xx': {
      const n = t.metric === 'errors' ? s.errors : s.non2xx;
      if (!t.percent) return n;
      const total = s.requests + (t.metric === 'errors' ? s.errors : 0);
      return total === 0 ? 0 : n / total;
    }
    case 'hop':
      return s.hopMs ?? undefined;
    case 'bound':
      return s.boundPct;
    case 'blocking':
      return s.blockingX;
    default:
      return s.latencyMs[t.metric];
  }
}

/** Evaluates every threshold on every subject it applies to. */
export function evaluateThresholds(thresholds: readonly Threshold[], subjects: readonly ThresholdSubject[]): ThresholdResult[] {
  const out: ThresholdResult[] = [];
  for (const t of thresholds) {
    const applies = subjects.filter((s) => (t.scope ? s.target === t.scope || s.target.startsWith(`${t.scope}@`) : true));
    if (applies.length === 0) {
      // A target that was skipped (driver unavailable) is reported as such, not failed.
      out.push({ expr: t.expr, target: t.scope ?? '(none)', ok: true, note: 'not evaluated: no such target in this run' });
      continue;
    }
    for (const s of applies) {
      if (t.metric === 'hop' && s.target === 'direct') continue;
      const actual = actualOf(t, s);
      if (actual === undefined) {
        const note = t.metric === 'hop' ? 'no direct baseline in this run, so no hop cost' : `${t.metric} is only measured by eppkit bench nonblocking`;
        out.push({ expr: t.expr, target: s.target, ok: false, note });
        continue;
      }
      out.push({ expr: t.expr, target: s.target, actual: t.percent ? actual * 100 : actual, ok: compare(actual, t.op, t.value) });
    }
  }
  return out;
}
