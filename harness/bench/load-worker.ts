// One load worker: a child process with its own event loop (so the load client is not one
// saturated loop), running its share of the connections or of the rate against one URL and
// recording latencies in an HDR histogram. The parent (load-client.ts) merges the workers.
// Run as a child: the parent sends one `run` message over IPC and gets one `result` back.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createHistogram, encodeHistogram, recordMicros } from '../../core/latency-histogram.ts';
import type { Executor } from './bench-options.ts';
import { chatBody } from '../runner/request-body.ts';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  bodyBytes: number;
  /** Send an OpenAI chat body of bodyBytes with this model (last) instead of bodyBytes of 'x'. */
  bodyModel?: string;
  executor: Executor;
  /** This worker's connections (closed loop) or most requests in flight (arrival rate). */
  connections: number;
  /** This worker's requests per second (arrival rate only). */
  rate?: number;
  warmupMs: number;
  durationMs: number;
  timeoutMs: number;
}

export interface WorkerResult {
  /** Compressed base64 HDR histogram of latencies in µs (every answered request). */
  histogram: string;
  /** Requests answered with any HTTP status during the measured window. */
  requests: number;
  statusCodes: Record<string, number>;
  non2xx: number;
  /** Requests that got no HTTP answer (reset, refused, timeout), by kind. */
  errors: number;
  errorKinds: Record<string, number>;
  /** Arrival rate only: requests not sent because `connections` were all busy (k6's dropped iterations). */
  dropped: number;
  bytes: number;
  elapsedMs: number;
  /** CPU this worker used over the window, as a fraction of one core. */
  cpu: number;
  /** Requests of the window still unanswered when it closed and after a grace period: counted as errors. */
  inFlightAtClose: number;
  pid: number;
  rssBytes: number;
}

/** Error kind of a request still in flight when the window (plus grace) closed: a timeout, never silence. */
export const IN_FLIGHT_AT_CLOSE = 'timeout (in flight at window close)';

/** How long after the window closes requests still in flight may finish before they count as timeouts. */
export function closeGraceMs(timeoutMs: number): number {
  return Math.min(timeoutMs, 5000);
}

/** The burst executor starts a burst this often (when the previous one is over). */
export const BURST_INTERVAL_MS = 1000;

type Outcome = { status: number; bytes: number } | { error: string };

export async function runLoadWorker(spec: LoadSpec): Promise<WorkerResult> {
  const target = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections, maxFreeSockets: spec.connections, scheduling: 'fifo' });
  const body = spec.bodyBytes <= 0 ? undefined : spec.bodyModel !== undefined ? chatBody(spec.bodyBytes, spec.bodyModel, true) : Buffer.alloc(spec.bodyBytes, 0x78);
  const headers: Record<string, string> = { ...spec.headers };
  if (body) {
    headers['content-length'] = String(body.length);
    headers['content-type'] ??= 'application/octet-stream';
  }
  const options: http.RequestOptions = {
    agent,
    host: target.hostname,
    port: target.port || 80,
    path: `${target.pathname}${target.search}`,
    method: spec.method,
    headers,
  };

  // Every request sent and not yet accounted: at window close (+ grace) the rest count as timeouts.
  const open = new Map<number, number>();
  let openSeq = 0;
  let closed = false;
  let inFlightAtClose = 0;
  const once = (): Promise<Outcome> =>
    new Promise((resolve) => {
      let done = false;
      const finish = (o: Outcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(o);
      };
      const req = http.request(options, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => finish({ status: res.statusCode ?? 0, bytes }));
        res.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? 'response-error' }));
      });
      const timer = setTimeout(() => {
        finish({ error: 'timeout' });
        req.destroy();
      }, spec.timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? e.message }));
      req.end(body);
    });

  /** Waits for `p`, but no longer than the window's end plus the grace; then the rest are timeouts. */
  const untilClosed = async (p: Promise<unknown>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, stopAt + closeGraceMs(spec.timeoutMs) - performance.now()));
    });
    await Promise.race([p, grace]);
    clearTimeout(timer);
    // Sent during the warmup counts too: a request that blocked its connection through the whole
    // window is the plainest sign of a hang.
    for (const started of open.values()) {
      if (started >= stopAt) continue;
      inFlightAtClose++;
      errors++;
      errorKinds[IN_FLIGHT_AT_CLOSE] = (errorKinds[IN_FLIGHT_AT_CLOSE] ?? 0) + 1;
    }
    open.clear();
    closed = true;
  };

  const hist = createHistogram();
  const statusCodes: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  let requests = 0;
  let non2xx = 0;
  let errors = 0;
  let dropped = 0;
  let bytes = 0;
  let lastEnd = 0;

  const startAt = performance.now();
  const measureFrom = startAt + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  let cpuAtMeasure: NodeJS.CpuUsage | undefined;
  const cpuTimer = setTimeout(() => (cpuAtMeasure = process.cpuUsage()), Math.max(0, spec.warmupMs));

  // Only requests that start inside the window count; latency runs from the intended start
  // (for arrival rate the scheduled time, so a stalled server is not hidden: no coordinated omission).
  const account = (intendedStart: number, o: Outcome): void => {
    if (closed || intendedStart < measureFrom || intendedStart >= stopAt) return;
    const end = performance.now();
    lastEnd = Math.max(lastEnd, end);
    if ('error' in o) {
      errors++;
      errorKinds[o.error] = (errorKinds[o.error] ?? 0) + 1;
      return;
    }
    requests++;
    bytes += o.bytes;
    statusCodes[o.status] = (statusCodes[o.status] ?? 0) + 1;
    if (o.status < 200 || o.status > 299) non2xx++;
    recordMicros(hist, (end - intendedStart) * 1000);
  };

  if (spec.executor === 'burst') {
    // Every second (or as soon as the last one is over), `connections` requests at once, each on
    // its own connection: what a plane must absorb when a crowd arrives together.
    while (performance.now() < stopAt) {
      const t = performance.now();
      await Promise.all(Array.from({ length: spec.connections }, () => once().then((o) => account(t, o))));
      // The next burst starts one interval after this one started, if that is still in the window.
      if (t + BURST_INTERVAL_MS >= stopAt) break;
      const wait = t + BURST_INTERVAL_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  } else if (spec.executor === 'constant-vus') {
    const vu = async (): Promise<void> => {
      while (performance.now() < stopAt && !closed) {
        const t = performance.now();
        const id = ++openSeq;
        open.set(id, t);
        const o = await once();
        open.delete(id);
        account(t, o);
      }
    };
    await untilClosed(Promise.all(Array.from({ length: spec.connections }, vu)));
  } else {
    const interval = 1000 / (spec.rate ?? 1);
    let inFlight = 0;
    const pending = new Set<Promise<void>>();
    await new Promise<void>((resolve) => {
      let next = startAt;
      const tick = (): void => {
        const now = performance.now();
        while (next <= now && next < stopAt) {
          const intended = next;
          next += interval;
          if (inFlight >= spec.connections) {
            if (intended >= measureFrom) dropped++;
            continue;
          }
          inFlight++;
          const id = ++openSeq;
          open.set(id, intended);
          const p = once().then((o) => {
            inFlight--;
            open.delete(id);
            account(intended, o);
          });
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        if (next >= stopAt) return resolve();
        setTimeout(tick, Math.max(0, next - performance.now()));
      };
      tick();
    });
    await untilClosed(Promise.all(pending));
  }

  clearTimeout(cpuTimer);
  const cpuUsed = process.cpuUsage(cpuAtMeasure);
  const elapsedMs = Math.max(spec.durationMs, lastEnd - measureFrom);
  agent.destroy();
  const result: WorkerResult = {
    histogram: encodeHistogram(hist),
    requests,
    statusCodes,
    non2xx,
    errors,
    errorKinds,
    dropped,
    bytes,
    elapsedMs,
    cpu: (cpuUsed.user + cpuUsed.system) / 1000 / elapsedMs,
    inFlightAtClose,
    pid: process.pid,
    rssBytes: process.memoryUsage().rss,
  };
  hist.destroy();
  return result;
}

// As a child process: one run per process, answered over IPC.
function reply(msg: unknown): void {
  process.send?.(msg, undefined, {}, () => process.disconnect?.());
}
if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  // The parent went away (interrupted bench): stop loading the target at once.
  process.once('disconnect', () => process.exit(0));
  process.once('message', (msg: { type: 'run'; spec: LoadSpec }) => {
    runLoadWorker(msg.spec).then(
      (result) => reply({ type: 'result', result }),
      (e: unknown) => reply({ type: 'failed', reason: (e as Error)?.stack ?? String(e) }),
    );
  });
}
