// The run step with autocannon (`--client autocannon`), the benchmark tool the product brief
// names, beside eppkit's own load client (load-client.ts, the default). Same request as the own
// client (method, path, headers incl. x-eppkit-delay-ms, body of N × 'x'), results converted
// into the same LoadResult so thresholds and reports work unchanged. Two limits, stated in the
// report: latencies are whole milliseconds (autocannon's histogram), and `--rate` becomes
// autocannon's overallRate, a rate limit on a closed loop, not an open arrival rate (no
// "dropped" count: a slow answer delays the next request instead).
import { createRequire } from 'node:module';
import autocannon from 'autocannon';
import { EppkitError } from '../../core/errors.ts';
import type { LoadResult } from './load-client.ts';
import type { LoadSpec } from './load-worker.ts';

/** The installed autocannon's version, for the report. */
export const AUTOCANNON_VERSION: string = (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version;

/** The part of autocannon's result the conversion reads (its Result type has more). */
export interface AutocannonSummary {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  requests: { total: number };
  throughput: { total: number };
  latency: { p50: number; p90: number; p99: number; p99_9: number; max: number; min: number; mean: number; totalCount?: number };
  statusCodeStats?: Record<string, { count?: number }>;
}

/** autocannon's timeout is in seconds; never below 1 ms worth. */
const seconds = (ms: number): number => Math.max(0.001, ms / 1000);

/** The autocannon options for one run of `spec` (whole-client connections and rate). */
export function autocannonOptions(spec: LoadSpec, workers: number, durationMs: number): autocannon.Options {
  // Never more workers than connections, as with the own client; autocannon gives each worker
  // thread floor(connections / workers) connections.
  const n = Math.max(1, Math.min(workers, spec.connections));
  const opts: autocannon.Options = {
    url: spec.url,
    method: spec.method,
    headers: { ...spec.headers },
    connections: spec.connections,
    duration: durationMs / 1000,
    timeout: seconds(spec.timeoutMs),
    // Every answer in the histogram, as the own client does (non-2xx are counted apart).
    excludeErrorStats: false,
  };
  // 'x' × N: the own client's body bytes. A string survives the copy into worker threads.
  if (spec.bodyBytes > 0) {
    opts.body = 'x'.repeat(spec.bodyBytes);
    opts.headers!['content-type'] ??= 'application/octet-stream';
  }
  if (n > 1) opts.workers = n;
  if (spec.rate !== undefined) {
    // Each worker thread applies overallRate as given (autocannon does not split it): split it here.
    opts.overallRate = Math.max(1, Math.round(spec.rate / n));
    // autocannon 9's coordinated-omission correction assumes an interval of ceil(1 / per-connection
    // rate) = 1 ms whatever the rate, so it adds phantom samples to every answer slower than 1 ms
    // and inflates the percentiles: off, one sample per answer, as the own client records.
    opts.ignoreCoordinatedOmission = true;
  }
  return opts;
}

/** autocannon's result → the bench's per-target LoadResult (latency stays in ms, whole-ms resolution). */
export function fromAutocannon(r: AutocannonSummary, cpu: number): LoadResult {
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) if (s.count) statusCodes[code] = s.count;
  const errorKinds: Record<string, number> = {};
  // autocannon counts timeouts among its errors and keeps no finer split of the rest.
  if (r.timeouts > 0) errorKinds.timeout = r.timeouts;
  if (r.errors - r.timeouts > 0) errorKinds['connection error'] = r.errors - r.timeouts;
  const elapsedMs = Math.max(1, Math.round(r.duration * 1000));
  const requests = r.requests.total;
  const l = r.latency;
  return {
    latencyMs: { p50: l.p50, p90: l.p90, p99: l.p99, p999: l.p99_9, max: l.max, min: l.min, mean: Math.round(l.mean * 1000) / 1000, count: l.totalCount ?? requests },
    requests,
    rps: Math.round((requests / elapsedMs) * 1000 * 10) / 10,
    statusCodes,
    non2xx: r.non2xx,
    errors: r.errors,
    errorKinds,
    bytes: r.throughput.total,
    elapsedMs,
    // One entry: the whole autocannon process (every worker thread), as a fraction of one core.
    workerCpu: [Math.round(cpu * 100) / 100],
  };
}

async function once(opts: autocannon.Options): Promise<autocannon.Result> {
  try {
    return await autocannon(opts);
  } catch (e) {
    throw new EppkitError('EPPKIT_START_FAILED', { what: 'autocannon', reason: (e as Error)?.message ?? String(e) });
  }
}

/** Warmup (a short run whose result is thrown away), then the measured run. */
export async function runAutocannon(spec: LoadSpec, workers: number): Promise<LoadResult> {
  if (spec.warmupMs > 0) await once(autocannonOptions(spec, workers, spec.warmupMs));
  const opts = autocannonOptions(spec, workers, spec.durationMs);
  const before = process.cpuUsage();
  const r = await once(opts);
  const used = process.cpuUsage(before);
  const elapsed = Math.max(1, r.duration * 1000);
  return fromAutocannon(r as unknown as AutocannonSummary, (used.user + used.system) / 1000 / elapsed);
}
