// The run step of the bench pipeline: splits one target's load across N worker processes
// (load-worker.ts), waits for them, merges their histograms and counters. Separate processes,
// not one event loop, so the load client is not the first thing to saturate; each worker's
// CPU share is reported so a saturated client is visible in the report.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EppkitError } from '../../core/errors.ts';
import type { LatencySummary } from '../../core/latency-histogram.ts';
import { mergeTallies, type Tally } from '../../core/load-tally.ts';
import type { LoadSpec, WorkerResult } from './load-worker.ts';

const WORKER_FILE = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

/**
 * One target's load as the report shows it: the merged tally of the client's workers (counters
 * as core/load-tally.ts documents them), plus its rate and each worker's own figures. autocannon
 * has no dropped count, in-flight-at-close or µs histogram: those are the eppkit clients' only.
 */
export interface LoadResult
  extends Pick<Tally, 'requests' | 'statusCodes' | 'non2xx' | 'errors' | 'errorKinds' | 'bytes' | 'elapsedMs'>,
    Partial<Pick<Tally, 'dropped' | 'inFlightAtClose' | 'histogram'>> {
  latencyMs: LatencySummary;
  rps: number;
  /** Per worker, fraction of one core used during the window. */
  workerCpu: number[];
  /** Per worker (eppkit client): its pid and RSS at the end, for the per-process table. */
  workerPids?: number[];
  workerRssBytes?: number[];
}

/** Splits `total` into `n` integer shares that differ by at most one. */
export function split(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  return Array.from({ length: n }, (_, i) => base + (i < total % n ? 1 : 0));
}

function runOne(spec: LoadSpec): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = fork(WORKER_FILE, [], {
      execArgv: ['--disable-warning=ExperimentalWarning'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let stderr = '';
    let settled = false;
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('message', (m: { type: 'result'; result: WorkerResult } | { type: 'failed'; reason: string }) => {
      settled = true;
      if (m.type === 'result') resolve(m.result);
      else reject(new EppkitError('EPPKIT_START_FAILED', { what: 'a load worker', reason: m.reason }));
    });
    child.on('exit', (code, signal) => {
      if (!settled) reject(new EppkitError('EPPKIT_START_FAILED', { what: 'a load worker', reason: `exited (${signal ?? `code ${code}`}) without a result; stderr:\n${stderr}` }));
    });
    child.send({ type: 'run', spec });
  });
}

/** Runs `spec` (whole-client connections and rate) split across `workers` processes. */
export async function runLoad(spec: LoadSpec, workers: number): Promise<LoadResult> {
  // Never more workers than connections: a worker with no connection would idle.
  const n = Math.max(1, Math.min(workers, spec.connections));
  const conns = split(spec.connections, n);
  const rates = spec.rate !== undefined ? conns.map(() => spec.rate! / n) : undefined;
  const results = await Promise.all(conns.map((c, i) => runOne({ ...spec, connections: c, rate: rates?.[i] })));
  return loadResultOf(results);
}

/** The run step's result from the tallies of the client's workers (Node processes or the compiled client). */
export function loadResultOf(results: readonly WorkerResult[]): LoadResult {
  const m = mergeTallies(results);
  return {
    latencyMs: m.latencyMs,
    requests: m.requests,
    rps: Math.round((m.requests / Math.max(1, m.elapsedMs)) * 1000 * 10) / 10,
    statusCodes: m.statusCodes,
    non2xx: m.non2xx,
    errors: m.errors,
    errorKinds: m.errorKinds,
    dropped: m.dropped,
    bytes: m.bytes,
    elapsedMs: Math.round(m.elapsedMs),
    workerCpu: results.map((r) => Math.round(r.cpu * 100) / 100),
    workerPids: results.map((r) => r.pid),
    workerRssBytes: results.map((r) => r.rssBytes),
    inFlightAtClose: m.inFlightAtClose,
    histogram: m.histogram,
  };
}
