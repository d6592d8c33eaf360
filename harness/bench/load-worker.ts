// One load worker: a child process with its own event loop (so the load client is not one
// saturated loop), running its share of the connections or of the rate against one URL and
// recording latencies in an HDR histogram. The parent (load-client.ts) merges the workers.
// Run as a child: the parent sends one `run` message over IPC and gets one `result` back.
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { runExecutor, type Executor, type ExecutorPlan, type Outcome } from '../../core/load-executor.ts';
import type { Tally } from '../../core/load-tally.ts';
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

/** One worker's tally, with what only a worker process knows about itself. */
export interface WorkerResult extends Tally {
  /** CPU this worker used over the window, as a fraction of one core. */
  cpu: number;
  pid: number;
  rssBytes: number;
}

/** The request of every eppkit HTTP load client for `spec` (Node workers, the compiled client): body and headers. */
export function loadRequest(spec: LoadSpec): { body: Buffer | undefined; headers: Record<string, string> } {
  const body = spec.bodyBytes <= 0 ? undefined : spec.bodyModel !== undefined ? chatBody(spec.bodyBytes, spec.bodyModel, true) : Buffer.alloc(spec.bodyBytes, 0x78);
  const headers: Record<string, string> = { ...spec.headers };
  if (body) headers['content-type'] ??= 'application/octet-stream';
  return { body, headers };
}

/** One HTTP request on the worker's keep-alive agent: the protocol half of an iteration. */
function httpIteration(spec: LoadSpec): { fire: () => Promise<Outcome>; agent: http.Agent } {
  const target = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections, maxFreeSockets: spec.connections, scheduling: 'fifo' });
  const { body, headers } = loadRequest(spec);
  if (body) headers['content-length'] = String(body.length);
  const options: http.RequestOptions = {
    agent,
    host: target.hostname,
    port: target.port || 80,
    path: `${target.pathname}${target.search}`,
    method: spec.method,
    headers,
  };
  const fire = (): Promise<Outcome> =>
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
  return { fire, agent };
}

export async function runLoadWorker(spec: LoadSpec): Promise<WorkerResult> {
  const { fire, agent } = httpIteration(spec);
  let cpuAtMeasure: NodeJS.CpuUsage | undefined;
  const cpuTimer = setTimeout(() => (cpuAtMeasure = process.cpuUsage()), Math.max(0, spec.warmupMs));
  const plan: ExecutorPlan = { executor: spec.executor, slots: spec.connections, warmupMs: spec.warmupMs, durationMs: spec.durationMs, timeoutMs: spec.timeoutMs };
  if (spec.rate !== undefined) plan.rate = spec.rate;
  const tally = await runExecutor(plan, fire);
  clearTimeout(cpuTimer);
  const cpuUsed = process.cpuUsage(cpuAtMeasure);
  agent.destroy();
  return { ...tally, cpu: (cpuUsed.user + cpuUsed.system) / 1000 / Math.max(1, tally.elapsedMs), pid: process.pid, rssBytes: process.memoryUsage().rss };
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
