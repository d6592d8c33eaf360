// `eppkit node-proxy`: runs the proxy (or the NGF shim) until SIGTERM/SIGINT. Prints exactly
// `listening on http://host:port` (and `admin listening on http://host:port`) on stdout when
// ready, so a parent process can parse them. `--workers N` forks N processes sharing the port
// (node:cluster); the primary then serves the admin port and sums the workers' metrics.
import cluster, { type Worker } from 'node:cluster';
import type { Argv, CommandModule } from 'yargs';
import { EppkitError, ERRORS, isEppkitError, type ErrorCode } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import { resolveNodeProxyConfig, type NodeProxyConfig, type NodeProxyInput } from './node-proxy-config.ts';
import { NodeProxy, startAdminServer, type StartedNodeProxy } from './node-proxy.ts';
import { mergeSnapshots, type MetricsSnapshot } from './proxy-metrics.ts';

interface Args {
  listen?: string;
  epp?: string;
  'failure-mode'?: string;
  'timeout-ms'?: number;
  fallback?: string;
  'body-mode'?: string;
  allow?: string;
  admin?: string;
  workers?: number;
  config?: string;
  shim?: boolean;
  'path-prefix'?: string;
  'response-processing'?: boolean;
  'max-body-bytes'?: number;
  'subset-hint'?: string;
  'epp-ca'?: string;
  'epp-server-name'?: string;
  'epp-insecure'?: boolean;
  'epp-client'?: string;
  bbr?: boolean;
  'bbr-header'?: string;
  'bbr-require-model'?: boolean;
}

const list = (s: string | undefined): string[] | undefined =>
  s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter((x) => x !== '');

/** Flags -> the config input (only flags actually given, so the file's values stay). */
export function argsToInput(a: Args): NodeProxyInput {
  const input: Record<string, unknown> = {
    configFile: a.config,
    listen: a.listen,
    admin: a.admin,
    workers: a.workers,
    shim: a.shim,
    eppAddress: a.epp,
    failureMode: a['failure-mode'],
    timeoutMs: a['timeout-ms'],
    bodyMode: a['body-mode'],
    fallbackEndpoints: list(a.fallback),
    allow: list(a.allow),
    pathPrefix: a['path-prefix'],
    responseProcessing: a['response-processing'],
    maxBodyBytes: a['max-body-bytes'],
    subsetHint: list(a['subset-hint']),
    eppClient: a['epp-client'],
  };
  if (a['epp-ca'] !== undefined || a['epp-server-name'] !== undefined || a['epp-insecure'] !== undefined) {
    const tls: Record<string, unknown> = {};
    if (a['epp-ca'] !== undefined) tls.caFile = a['epp-ca'];
    if (a['epp-server-name'] !== undefined) tls.serverName = a['epp-server-name'];
    if (a['epp-insecure'] !== undefined) tls.insecureSkipVerify = a['epp-insecure'];
    input.eppTls = tls;
  }
  if (a.bbr !== undefined || a['bbr-header'] !== undefined || a['bbr-require-model'] !== undefined) {
    const bbr: Record<string, unknown> = {};
    if (a['bbr-header'] !== undefined) bbr.header = a['bbr-header'];
    if (a['bbr-require-model'] !== undefined) bbr.requireModel = a['bbr-require-model'];
    input.bbr = a.bbr === false ? false : bbr;
  }
  for (const k of Object.keys(input)) if (input[k] === undefined) delete input[k];
  return input as NodeProxyInput;
}

type WorkerMessage =
  | { type: 'ready'; url: string }
  | { type: 'failed'; code?: string; details?: Record<string, string | number>; message: string }
  | { type: 'metrics'; id: number; snapshot: MetricsSnapshot };
type PrimaryMessage = { type: 'metrics'; id: number } | { type: 'stop' };

function onSignals(fn: () => void): void {
  process.once('SIGTERM', fn);
  process.once('SIGINT', fn);
}

async function runSingle(config: NodeProxyConfig): Promise<void> {
  const proxy = await new NodeProxy(config).start();
  process.stdout.write(`listening on ${proxy.url}\n`);
  if (proxy.adminUrl) process.stdout.write(`admin listening on ${proxy.adminUrl}\n`);
  await new Promise<void>((resolve) => onSignals(() => void proxy.stop().then(resolve)));
}

async function runWorker(config: NodeProxyConfig): Promise<void> {
  let proxy: StartedNodeProxy;
  try {
    proxy = await new NodeProxy(config).withoutAdmin().start();
  } catch (e) {
    // The primary reports it (as the same EppkitError) and stops the other workers.
    const msg: WorkerMessage = isEppkitError(e)
      ? { type: 'failed', code: e.code, details: { ...e.details }, message: e.message }
      : { type: 'failed', message: String((e as Error)?.stack ?? e) };
    process.send?.(msg, () => process.exit(1));
    return;
  }
  process.on('message', (m: PrimaryMessage) => {
    if (m.type === 'metrics') process.send?.({ type: 'metrics', id: m.id, snapshot: proxy.metrics.snapshot() } satisfies WorkerMessage);
    if (m.type === 'stop') void proxy.stop().then(() => process.exit(0));
  });
  // The primary forwards the signal as a 'stop' message; a direct signal stops too.
  onSignals(() => void proxy.stop().then(() => process.exit(0)));
  process.send?.({ type: 'ready', url: proxy.url } satisfies WorkerMessage);
}

async function runPrimary(config: NodeProxyConfig): Promise<void> {
  const log = createLogger('node-proxy-primary');
  const workers = new Set<Worker>();
  let stopping = false;
  // A worker that dies after start-up is replaced; one that fails to start fails the command.
  let started = false;
  let nextId = 1;
  const pending = new Map<number, { need: number; got: MetricsSnapshot[]; resolve: (s: MetricsSnapshot) => void }>();

  const fork = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ EPPKIT_NODE_PROXY_WORKER: '1' });
      workers.add(w);
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') resolve(m.url);
        if (m.type === 'failed') {
          reject(
            m.code && m.code in ERRORS
              ? new EppkitError(m.code as ErrorCode, m.details ?? {})
              : new EppkitError('EPPKIT_START_FAILED', { what: 'a node-proxy worker', reason: m.message }),
          );
        }
        if (m.type === 'metrics') {
          const p = pending.get(m.id);
          if (!p) return;
          p.got.push(m.snapshot);
          if (p.got.length >= p.need) {
            pending.delete(m.id);
            p.resolve(mergeSnapshots(p.got));
          }
        }
      });
      w.on('exit', (code, signal) => {
        workers.delete(w);
        reject(new EppkitError('EPPKIT_START_FAILED', { what: 'a node-proxy worker', reason: `exited (${code ?? signal}) before it was ready` }));
        if (started && !stopping) {
          log.error({ event: 'worker_exit', code, signal }, 'worker died; starting another');
          void fork().catch((e: unknown) => log.error({ event: 'worker_restart_failed', err: e }));
        }
      });
    });

  let url: string;
  try {
    const urls = await Promise.all(Array.from({ length: config.workers }, fork));
    url = urls[0] as string;
    started = true;
  } catch (e) {
    stopping = true;
    for (const w of workers) w.kill();
    throw e;
  }
  process.stdout.write(`listening on ${url}\n`);

  const gather = (): Promise<MetricsSnapshot> =>
    new Promise((resolve) => {
      const id = nextId++;
      const alive = [...workers].filter((w) => w.isConnected());
      if (alive.length === 0) return resolve(mergeSnapshots([]));
      const entry = { need: alive.length, got: [] as MetricsSnapshot[], resolve };
      pending.set(id, entry);
      for (const w of alive) w.send({ type: 'metrics', id } satisfies PrimaryMessage);
      // A worker that does not answer in time is left out rather than hanging /metrics.
      setTimeout(() => {
        if (pending.delete(id)) resolve(mergeSnapshots(entry.got));
      }, 1000).unref();
    });
  let admin: Awaited<ReturnType<typeof startAdminServer>> | undefined;
  if (config.admin) {
    try {
      admin = await startAdminServer(config.admin, gather, log);
    } catch (e) {
      stopping = true;
      for (const w of workers) w.kill();
      throw e;
    }
    process.stdout.write(`admin listening on ${admin.url}\n`);
  }
  await new Promise<void>((resolve) =>
    onSignals(() => {
      stopping = true;
      admin?.server.close();
      admin?.server.closeAllConnections();
      if (workers.size === 0) return resolve();
      for (const w of workers) {
        w.once('exit', () => {
          if (workers.size === 0) resolve();
        });
        if (w.isConnected()) w.send({ type: 'stop' } satisfies PrimaryMessage);
        else w.kill();
      }
      setTimeout(() => {
        for (const w of workers) w.kill('SIGKILL');
        resolve();
      }, 5000).unref();
    }),
  );
}

const command: CommandModule<object, Args> = {
  command: 'node-proxy',
  describe: 'Run the reference HTTP/1.1 data plane that routes each request through an EPP (or the NGF shim with --shim)',
  builder: (y: Argv) =>
    y
      .options({
        listen: { type: 'string', describe: 'host:port to serve on (port 0 = any free port) [default: 127.0.0.1:0]' },
        epp: { type: 'string', describe: "the EPP's gRPC address host:port" },
        'failure-mode': { type: 'string', choices: ['open', 'close'], describe: 'on EPP failure: open = use --fallback, close = 500/504 [default: close]' },
        'timeout-ms': { type: 'number', describe: 'per-message EPP timeout in ms [default: 200]' },
        fallback: { type: 'string', describe: 'ip:port,... used on fail-open' },
        'body-mode': { type: 'string', choices: ['none', 'buffered', 'streamed'], describe: 'what of the body the EPP sees [default: buffered]' },
        allow: { type: 'string', describe: 'CIDRs or ip:port the EPP may pick, comma-separated [default: any]' },
        admin: { type: 'string', describe: 'host:port for /healthz and /metrics [default: none]' },
        workers: { type: 'number', describe: 'processes sharing the port [default: 1]' },
        config: { type: 'string', describe: 'YAML/JSON config file (routes by path prefix, TLS, limits); flags override its top level' },
        shim: { type: 'boolean', describe: 'NGINX Gateway Fabric sidecar mode (EPP from X-EPP-Host/X-EPP-Port)' },
        'path-prefix': { type: 'string', describe: 'path prefix of the flag-defined route [default: /]' },
        'response-processing': { type: 'boolean', describe: 'send response headers with the served endpoint to the EPP [default: false]' },
        'max-body-bytes': { type: 'number', describe: 'largest request body, bytes; more = 413 [default: 16777216]' },
        'subset-hint': { type: 'string', describe: 'ip:port,... sent as the envoy.lb.subset_hint metadata' },
        'epp-ca': { type: 'string', describe: 'PEM CA file: use TLS to the EPP and verify with it' },
        'epp-server-name': { type: 'string', describe: 'TLS server name expected of the EPP' },
        'epp-insecure': { type: 'boolean', describe: 'TLS to the EPP without verifying its certificate (tests only)' },
        'epp-client': { type: 'string', choices: ['wire', 'http2', 'grpc-js'], describe: 'ext_proc client: eppkit\'s own HTTP/2 (wire), node:http2, or grpc-js [default: wire]' },
        bbr: { type: 'boolean', describe: "body-based routing: the JSON body's top-level model into X-Gateway-Model-Name before the EPP call [default: off]" },
        'bbr-header': { type: 'string', describe: 'header BBR writes the model into (implies --bbr) [default: X-Gateway-Model-Name]' },
        'bbr-require-model': { type: 'boolean', describe: 'BBR: answer 400 when a body has no usable model (implies --bbr) [default: false]' },
      })
      .example('$0 node-proxy --listen 127.0.0.1:0 --epp 127.0.0.1:9002 --fallback 127.0.0.1:8000', '')
      .example('$0 node-proxy --shim --listen 127.0.0.1:54800', 'the NGF sidecar') as unknown as Argv<Args>,
  handler: async (argv) => {
    const config = resolveNodeProxyConfig(argsToInput(argv));
    if (cluster.isWorker) return runWorker(config);
    if (config.workers > 1) return runPrimary(config);
    return runSingle(config);
  },
};

export default command;
