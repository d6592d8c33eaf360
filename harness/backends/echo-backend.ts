// An echo "model server": answers OpenAI-style /v1/completions, /v1/chat/completions and
// /v1/models (and any other path) with what it received (method, path, query, headers, body
// size and sha256) and who it is (name, ip:port; headers x-inference-pod / x-inference-port).
// It honours X-Echo-Set-Header (the conformance echo server's contract) and lets a test inject
// latency and errors per request (x-echo-delay-ms, x-echo-status, x-echo-reset) or for every
// request (withLatency / withErrorStatus). /health answers 200; /metrics vLLM-style gauges.
// It keeps the last N requests (withMaxReceived, default 1,000) for tests to inspect: a ring,
// so a long bench through it does not grow its memory.
// Test hooks for data planes' own tests (node-proxy's): /__echo-body answers the request body
// byte for byte; /__reset closes the connection without answering; /__reset-mid sends the head
// and 100 of 1000 body bytes, then closes; /__big?bytes=N answers N bytes of pattern(N);
// /__slow?ms=N answers after N ms (as x-echo-delay-ms; cutOff() counts those cut off before).
// The compiled eppkit-echo-backend (proxies/nginx-epp/bench-tools) answers the same headers.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { EppkitError } from '../../core/errors.ts';

export interface EchoRequest {
  method: string;
  path: string;
  /** Query parameters, in order, repeated keys kept. */
  query: Array<[string, string]>;
  rawQuery: string;
  /** Lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
  /** The client sent Transfer-Encoding: chunked. */
  chunked: boolean;
}

export interface EchoIdentity {
  name: string;
  ip: string;
  port: number;
  /** ip:port, with brackets around an IPv6 ip. */
  address: string;
}

export interface EchoResponseBody {
  backend: EchoIdentity;
  request: EchoRequest;
  /** OpenAI-shaped part, so clients that parse completions see something familiar. */
  object?: string;
  id?: string;
  model?: string;
  choices?: unknown[];
  data?: unknown[];
}

export function formatAddress(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** A request as `received` keeps it: the echo, plus the raw target and header lines. */
export interface ReceivedRequest extends EchoRequest {
  /** The request target as sent (path and query). */
  url: string;
  /** Header names and values in arrival order, as Node's rawHeaders. */
  rawHeaders: string[];
}

export interface StartedEchoBackend extends AsyncDisposable {
  readonly identity: EchoIdentity;
  readonly name: string;
  readonly address: string;
  /** http://<address> */
  readonly url: string;
  readonly port: number;
  readonly ip: string;
  /**
   * The last `withMaxReceived` (default 1,000) model requests, oldest first: a fresh copy on each
   * read. /health and /metrics are not recorded.
   */
  readonly received: readonly ReceivedRequest[];
  /** Model requests since start, the ones dropped from `received` included. */
  readonly receivedTotal: number;
  /** Delayed answers whose client went away before them. */
  cutOff(): number;
  /** Client connections open now. */
  openConnections(): number;
  /** Client connections accepted since start (a plane that reuses its upstream connections opens few). */
  acceptedConnections(): number;
  /** Closes the listening socket and every open connection: the port really is closed. */
  stop(): Promise<void>;
}

function parseSetHeaders(values: string | string[] | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  for (const v of list) {
    for (const pair of v.split(',')) {
      const i = pair.indexOf(':');
      if (i <= 0) continue;
      const name = pair.slice(0, i).trim();
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) continue;
      out.push([name, pair.slice(i + 1).trim()]);
    }
  }
  return out;
}

function intHeader(req: IncomingMessage, name: string): number | undefined {
  const v = req.headers[name];
  if (typeof v !== 'string' || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/** A deterministic byte pattern of length n (/__big's answer; bodies tests compare against it). */
export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

/** How many requests `received` keeps by default. */
export const DEFAULT_MAX_RECEIVED = 1000;

/** A fixed-size ring of the last `capacity` items; capacity 0 keeps none. */
class RecentRing<T> {
  private readonly items: T[] = [];
  private next = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }
  push(item: T): void {
    if (this.capacity === 0) return;
    if (this.items.length < this.capacity) this.items.push(item);
    else this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
  }
  /** Oldest first. */
  toArray(): T[] {
    return this.items.length < this.capacity ? [...this.items] : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

export class EchoBackend {
  private host = '127.0.0.2';
  private port = 0;
  private latencyMs = 0;
  private errorStatus: number | undefined;
  private maxReceived = DEFAULT_MAX_RECEIVED;
  private readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  withHost(host: string): this {
    this.host = host;
    return this;
  }
  withPort(port: number): this {
    this.port = port;
    return this;
  }
  /** Every request waits this long before it is answered. */
  withLatency(ms: number): this {
    this.latencyMs = ms;
    return this;
  }
  /** Every model request is answered with this status (an injected error). */
  withErrorStatus(status: number | undefined): this {
    this.errorStatus = status;
    return this;
  }

  /** How many of the latest requests `received` keeps (default 1,000; 0 = none). */
  withMaxReceived(n: number): this {
    if (!Number.isInteger(n) || n < 0) throw new EppkitError('EPPKIT_USAGE', { reason: `the echo backend's max received must be a non-negative integer (got ${n})` });
    this.maxReceived = n;
    return this;
  }

  async start(): Promise<StartedEchoBackend> {
    const received = new RecentRing<ReceivedRequest>(this.maxReceived);
    const sockets = new Set<Socket>();
    const pending = new Set<NodeJS.Timeout>();
    const { name, latencyMs, errorStatus } = this;
    let identity: EchoIdentity = { name, ip: this.host, port: 0, address: '' };
    let requestsRunning = 0;
    let requestsTotal = 0;
    let cutOff = 0;

    const handle = (req: IncomingMessage, res: ServerResponse): void => {
      const target = req.url ?? '/';
      if (target.startsWith('/__reset') && !target.startsWith('/__reset-mid')) return void req.socket.destroy();
      const hash = createHash('sha256');
      let bytes = 0;
      const keep = target.startsWith('/__echo-body');
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => {
        bytes += d.length;
        hash.update(d);
        if (keep) chunks.push(d);
      });
      req.on('error', () => res.destroy());
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://echo.invalid');
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) {
          if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        }
        const echo: EchoRequest = {
          method: req.method ?? 'GET',
          path: url.pathname,
          query: [...url.searchParams.entries()],
          rawQuery: url.search.replace(/^\?/, ''),
          headers,
          bodyBytes: bytes,
          bodySha256: hash.digest('hex'),
          chunked: /chunked/i.test(String(req.headers['transfer-encoding'] ?? '')),
        };
        if (url.pathname === '/health' || url.pathname === '/metrics') return answerInfra(url.pathname, res);
        received.push({ ...echo, url: target, rawHeaders: req.rawHeaders });
        requestsTotal++;
        if (hook(url, chunks, res)) return;
        requestsRunning++;
        const slow = url.pathname.startsWith('/__slow') ? Number(url.searchParams.get('ms') ?? '1000') : undefined;
        const delay = intHeader(req, 'x-echo-delay-ms') ?? slow ?? latencyMs;
        const timer = setTimeout(() => {
          pending.delete(timer);
          requestsRunning--;
          if (req.headers['x-echo-reset'] === 'true') return void res.socket?.resetAndDestroy();
          answer(echo, req, res);
        }, Math.min(delay, 600_000));
        pending.add(timer);
        // A client that goes away (or stop()) cancels the delayed answer: no timer outlives it.
        res.once('close', () => {
          if (pending.delete(timer)) {
            clearTimeout(timer);
            requestsRunning--;
            cutOff++;
          }
        });
      });
    };

    const identityHeaders = (): Record<string, string> => ({ 'x-inference-pod': name, 'x-inference-port': String(identity.port) });

    /** The test hooks that answer in their own way; true when one did. */
    const hook = (url: URL, chunks: Buffer[], res: ServerResponse): boolean => {
      if (url.pathname.startsWith('/__reset-mid')) {
        res.writeHead(200, { ...identityHeaders(), 'content-length': '1000' });
        res.write(Buffer.alloc(100, 1));
        setTimeout(() => res.socket?.destroy(), 20);
        return true;
      }
      if (url.pathname.startsWith('/__echo-body')) {
        const body = Buffer.concat(chunks);
        res.writeHead(200, { ...identityHeaders(), 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
        return true;
      }
      if (url.pathname.startsWith('/__big')) {
        res.writeHead(200, { ...identityHeaders(), 'content-type': 'application/octet-stream' }).end(pattern(Number(url.searchParams.get('bytes') ?? '0')));
        return true;
      }
      return false;
    };

    const answerInfra = (path: string, res: ServerResponse): void => {
      if (path === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', name }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(
        [
          '# TYPE vllm:num_requests_waiting gauge',
          'vllm:num_requests_waiting 0',
          '# TYPE vllm:num_requests_running gauge',
          `vllm:num_requests_running ${requestsRunning}`,
          '# TYPE vllm:kv_cache_usage_perc gauge',
          'vllm:kv_cache_usage_perc 0',
          '# TYPE eppkit_echo_requests_total counter',
          `eppkit_echo_requests_total ${requestsTotal}`,
          '',
        ].join('\n'),
      );
    };

    const answer = (echo: EchoRequest, req: IncomingMessage, res: ServerResponse): void => {
      const status = intHeader(req, 'x-echo-status') ?? errorStatus ?? 200;
      const body: EchoResponseBody = { backend: identity, request: echo };
      if (echo.path === '/v1/models') {
        Object.assign(body, { object: 'list', data: [{ id: 'eppkit-echo', object: 'model', owned_by: 'eppkit' }] });
      } else if (echo.path === '/v1/completions') {
        Object.assign(body, { object: 'text_completion', id: `cmpl-${name}-${requestsTotal}`, model: 'eppkit-echo', choices: [{ index: 0, text: `served by ${name}`, finish_reason: 'stop' }] });
      } else if (echo.path === '/v1/chat/completions') {
        Object.assign(body, {
          object: 'chat.completion',
          id: `chatcmpl-${name}-${requestsTotal}`,
          model: 'eppkit-echo',
          choices: [{ index: 0, message: { role: 'assistant', content: `served by ${name}` }, finish_reason: 'stop' }],
        });
      }
      const headers: Record<string, string | string[]> = { 'content-type': 'application/json', ...identityHeaders() };
      for (const [k, v] of parseSetHeaders(req.headers['x-echo-set-header'])) {
        const prev = headers[k.toLowerCase()];
        headers[k.toLowerCase()] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
      }
      if (status >= 400) Object.assign(body, { error: { message: `injected error ${status}`, type: 'eppkit_injected' } });
      res.writeHead(status, headers).end(JSON.stringify(body));
    };

    const server: Server = createServer({ keepAliveTimeout: 5000 }, handle);
    let accepted = 0;
    server.on('connection', (s) => {
      accepted += 1;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'EADDRINUSE'
            ? new EppkitError('EPPKIT_PORT_IN_USE', { address: formatAddress(this.host, this.port) })
            : new EppkitError('EPPKIT_LISTEN_FAILED', { address: formatAddress(this.host, this.port), reason: e.message }),
        ),
      );
      server.listen({ host: this.host, port: this.port, exclusive: true }, resolve);
    });
    const port = (server.address() as AddressInfo).port;
    identity = Object.freeze({ name, ip: this.host, port, address: formatAddress(this.host, port) });
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const t of pending) clearTimeout(t);
        pending.clear();
        for (const s of sockets) s.destroy();
      }));
    return {
      identity,
      name,
      address: identity.address,
      url: `http://${identity.address}`,
      port,
      ip: this.host,
      get received() {
        return received.toArray();
      },
      get receivedTotal() {
        return requestsTotal;
      },
      cutOff: () => cutOff,
      openConnections: () => sockets.size,
      acceptedConnections: () => accepted,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  }
}

/** An echo backend named `echo` on `host` (default 127.0.0.1, a free port); `record: false` keeps no requests (benchmarks). */
export function startEchoBackend(host = '127.0.0.1', opts: { record?: boolean; name?: string } = {}): Promise<StartedEchoBackend> {
  return new EchoBackend(opts.name ?? 'echo').withHost(host).withMaxReceived(opts.record === false ? 0 : DEFAULT_MAX_RECEIVED).start();
}
