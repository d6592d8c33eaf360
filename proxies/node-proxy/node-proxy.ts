// node-proxy: eppkit's reference ext_proc data plane in Node. An HTTP/1.1 reverse proxy that
// asks an Endpoint Picker where each request goes (or, in shim mode, answers NGINX Gateway
// Fabric's NJS handler with the pick).
//
//   await using proxy = await new NodeProxy({ listen: '127.0.0.1:0', eppAddress: epp.address }).start();
//   fetch(proxy.url + '/v1/completions', ...)
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { EppkitError } from '../../core/errors.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import { EppChannels } from './epp-channels.ts';
import { parseListen, resolveNodeProxyConfig, type NodeProxyConfig, type NodeProxyInput } from './node-proxy-config.ts';
import { compileRoute, matchRoute, type ProxyContext } from './proxy-context.ts';
import { ProxyMetrics, renderPrometheus, type MetricsSnapshot } from './proxy-metrics.ts';
import { ProxyRequest, sendLocal } from './proxy-request.ts';
import { ShimRequest } from './shim-request.ts';
import { UpstreamClient } from './upstream-client.ts';

export interface StartedNodeProxy extends AsyncDisposable {
  /** http://host:port of the proxy (or shim). */
  readonly url: string;
  readonly port: number;
  /** http://host:port of the admin server, when configured. */
  readonly adminUrl: string | undefined;
  readonly config: NodeProxyConfig;
  readonly metrics: ProxyMetrics;
  /** Stops accepting, lets requests in flight finish (up to graceMs), closes every connection. */
  stop(graceMs?: number): Promise<void>;
}

function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function listenOn(server: http.Server, address: string): Promise<{ host: string; port: number }> {
  const hp = parseListen(address);
  if (!hp) throw new EppkitError('EPPKIT_USAGE', { reason: `bad listen address ${address} (expected host:port)` });
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(
        e.code === 'EADDRINUSE'
          ? new EppkitError('EPPKIT_PORT_IN_USE', { address })
          : new EppkitError('EPPKIT_LISTEN_FAILED', { address, reason: e.code ?? e.message }),
      );
    };
    server.once('error', onError);
    server.listen(hp.port, hp.host, () => {
      server.off('error', onError);
      const a = server.address();
      resolve({ host: hp.host, port: typeof a === 'object' && a ? a.port : hp.port });
    });
  });
}

/** The admin server: GET /healthz, GET /metrics. `snapshot` may gather from cluster workers. */
export async function startAdminServer(
  address: string,
  snapshot: () => Promise<MetricsSnapshot> | MetricsSnapshot,
  log: Logger,
): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendLocal(res, 405, [['allow', 'GET, HEAD']], 'method not allowed\n');
    if (path === '/healthz') return sendLocal(res, 200, [['content-type', 'application/json']], '{"status":"ok"}\n');
    if (path === '/metrics') {
      Promise.resolve(snapshot()).then(
        (s) => sendLocal(res, 200, [['content-type', 'text/plain; version=0.0.4; charset=utf-8']], renderPrometheus(s)),
        (e: unknown) => {
          log.error({ event: 'metrics_failed', err: e });
          sendLocal(res, 500, [], 'metrics unavailable\n');
        },
      );
      return;
    }
    sendLocal(res, 404, [['content-type', 'text/plain']], 'not found: try /healthz or /metrics\n');
  });
  server.keepAliveTimeout = 5000;
  const { host, port } = await listenOn(server, address);
  return { server, url: urlOf(host, port) };
}

function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
    const t = setTimeout(() => server.closeAllConnections(), graceMs);
    t.unref();
  });
}

export class NodeProxy {
  private readonly input: NodeProxyInput | NodeProxyConfig;
  private logger: Logger | undefined;
  private serveAdmin = true;

  /** Validated config, or input to validate (file, flags or plain object). */
  constructor(config: NodeProxyInput | NodeProxyConfig) {
    this.input = config;
  }

  withLogger(logger: Logger): this {
    this.logger = logger;
    return this;
  }

  /** Cluster workers leave the admin server to the primary. */
  withoutAdmin(): this {
    this.serveAdmin = false;
    return this;
  }

  async start(): Promise<StartedNodeProxy> {
    const config = isResolved(this.input) ? this.input : resolveNodeProxyConfig(this.input);
    const log = this.logger ?? createLogger(config.shim ? 'node-proxy-shim' : 'node-proxy');
    // An EPP answer may carry a replaced body: room for the largest route body plus headers.
    const maxAnswerBytes = Math.max(0, ...config.routes.map((r) => r.maxBodyBytes)) + 1024 * 1024;
    const channels = new EppChannels(config.eppClient, maxAnswerBytes);
    const upstream = new UpstreamClient({ connectTimeoutMs: config.upstreamConnectTimeoutMs, maxHeaderBytes: config.maxHeaderBytes });
    const metrics = new ProxyMetrics();
    const routes = config.routes.map(compileRoute);
    const ctx: ProxyContext = {
      config,
      channels,
      upstream,
      metrics,
      log,
      routes,
      shimRoute: compileRoute({ ...config.shimRoute, eppAddress: '' }),
    };
    for (const r of config.routes) channels.warm(r.eppAddress, r.eppTls);

    // Sockets with a request in progress: a parser error on one of them (the client vanished
    // mid-body) belongs to that request, which records it as client_abort.
    const inFlight = new WeakSet<Socket>();
    const server = http.createServer({ maxHeaderSize: config.maxHeaderBytes }, (req, res) => {
      const sock = req.socket;
      inFlight.add(sock);
      res.once('close', () => inFlight.delete(sock));
      try {
        if (config.shim) {
          new ShimRequest(ctx, req, res).run();
          return;
        }
        const cr = matchRoute(routes, req.url ?? '/');
        if (!cr) {
          metrics.request('rejected', 'no_route', 404);
          log.warn({ event: 'request', outcome: 'rejected', reason: 'no_route', status: 404, path: req.url });
          req.resume();
          return sendLocal(res, 404, [['content-type', 'text/plain']], 'no_route\n', 'no_route');
        }
        new ProxyRequest(ctx, cr, req, res).run();
      } catch (e) {
        log.error({ event: 'internal_error', err: e });
        sendLocal(res, 500, [], '', 'internal_error');
      }
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Resets and timeouts of idle keep-alive connections are not requests.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || inFlight.has(socket)) {
        socket.destroy();
        return;
      }
      const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
      const status = tooBig ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const reason = tooBig ? 'headers_too_large' : 'bad_request';
      metrics.request('rejected', reason, status);
      log.warn({ event: 'request', outcome: 'rejected', reason, status, detail: err.code ?? err.message });
      const text = http.STATUS_CODES[status] ?? 'Bad Request';
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\nx-eppkit-reason: ${reason}\r\n\r\n`);
    });

    let address: { host: string; port: number };
    try {
      address = await listenOn(server, config.listen);
    } catch (e) {
      channels.close();
      upstream.destroy();
      throw e;
    }
    let admin: { server: http.Server; url: string } | undefined;
    if (config.admin && this.serveAdmin) {
      try {
        admin = await startAdminServer(config.admin, () => metrics.snapshot(), log);
      } catch (e) {
        server.close();
        channels.close();
        upstream.destroy();
        throw e;
      }
    }
    const url = urlOf(address.host, address.port);
    log.info({ event: 'started', url, admin: admin?.url, shim: config.shim, routes: config.routes.map((r) => r.pathPrefix) });

    let stopping: Promise<void> | undefined;
    const stop = (graceMs = 2000): Promise<void> => {
      stopping ??= (async () => {
        await Promise.all([closeServer(server, graceMs), admin ? closeServer(admin.server, 0) : Promise.resolve()]);
        channels.close();
        upstream.destroy();
        log.info({ event: 'stopped' });
      })();
      return stopping;
    };
    return {
      url,
      port: address.port,
      adminUrl: admin?.url,
      config,
      metrics,
      stop,
      [Symbol.asyncDispose]: () => stop(),
    };
  }
}

function isResolved(c: NodeProxyInput | NodeProxyConfig): c is NodeProxyConfig {
  return Object.isFrozen(c) && Array.isArray((c as NodeProxyConfig).routes) && (c as NodeProxyConfig).shimRoute !== undefined;
}
