// The mock EPP's admin HTTP API (loopback by default, optional bearer token):
// GET/PUT /config (names the fidelity profile), GET /profiles, GET/DELETE /journal (long-poll: ?wait=N&timeoutMs=T), GET /metrics, GET /healthz.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { EppkitError, isEppkitError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { parseConfigReplacementText } from './mock-epp-config.ts';
import { DEFAULT_PROFILE, PROFILES, PROFILE_MODELS, PROFILE_SWITCHES } from './fidelity-profiles.ts';
import type { StartedMockEpp } from './mock-epp.ts';

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_WAIT_MS = 120_000;

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export class AdminServer {
  readonly #epp: StartedMockEpp;
  readonly #token: Buffer | undefined;
  readonly #logger: Logger;
  #server: Server | undefined;
  #url = '';

  constructor(epp: StartedMockEpp, token: string | undefined, logger: Logger) {
    this.#epp = epp;
    this.#token = token ? Buffer.from(`Bearer ${token}`) : undefined;
    this.#logger = logger;
  }

  get url(): string {
    return this.#url;
  }

  listen(host: string, port: number): Promise<void> {
    const server = createServer((req, res) => {
      this.#route(req, res).catch((e: unknown) => {
        this.#logger.error({ err: e }, 'admin API error');
        if (!res.headersSent) send(res, 500, { error: String((e as Error)?.message ?? e) });
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 1000;
    this.#server = server;
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE') reject(new EppkitError('EPPKIT_PORT_IN_USE', { address }));
        else reject(new EppkitError('EPPKIT_LISTEN_FAILED', { address, reason: e.message }));
      });
      server.listen(port, host, () => {
        const a = server.address() as AddressInfo;
        this.#url = `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
        resolve();
      });
    });
  }

  #authorized(req: IncomingMessage): boolean {
    if (!this.#token) return true;
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === this.#token.length && timingSafeEqual(got, this.#token);
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/healthz' && method === 'GET') return send(res, 200, { status: 'ok', profile: this.#epp.config.profile, openStreams: this.#epp.openStreams });
    if (!this.#authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(res, 401, { error: 'missing or wrong bearer token' });
    }
    switch (`${method} ${path}`) {
      case 'GET /config':
        return send(res, 200, this.#epp.config);
      case 'PUT /config':
      case 'POST /config': {
        const text = await readBody(req, MAX_CONFIG_BYTES);
        if (text === undefined) return send(res, 413, { error: `config body over ${MAX_CONFIG_BYTES} bytes` });
        try {
          const cfg = parseConfigReplacementText(text, this.#epp.config, 'PUT /config');
          this.#epp.setConfig(cfg, 'PUT /config');
          return send(res, 200, this.#epp.config);
        } catch (e) {
          if (isEppkitError(e)) return send(res, 400, { error: e.message, code: e.code, problems: e.problems });
          throw e;
        }
      }
      case 'GET /profiles':
        return send(res, 200, { current: this.#epp.config.profile, default: DEFAULT_PROFILE, profiles: Object.fromEntries(PROFILES.map((p) => [p, { models: PROFILE_MODELS[p], switches: PROFILE_SWITCHES[p] }])) });
      case 'GET /journal': {
        const wait = url.searchParams.get('wait');
        if (wait === null) return send(res, 200, this.#epp.journal);
        const n = Number(wait);
        const timeoutMs = Number(url.searchParams.get('timeoutMs') ?? 5000);
        if (!Number.isInteger(n) || n < 0 || !Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_WAIT_MS) {
          return send(res, 400, { error: `wait must be a non-negative integer and timeoutMs 0..${MAX_WAIT_MS}` });
        }
        try {
          const entries = await this.#epp.waitForJournal(n, timeoutMs);
          return send(res, 200, entries);
        } catch (e) {
          // One snapshot: each read of the journal rebuilds its packed entries.
          const all = this.#epp.journal;
          return send(res, 504, { error: (e as Error).message, ended: all.filter((x) => x.end !== undefined).length, entries: all });
        }
      }
      case 'DELETE /journal':
        this.#epp.clearJournal();
        res.writeHead(204).end();
        return;
      case 'GET /metrics':
        return send(res, 200, this.#epp.renderMetrics(), 'text/plain; version=0.0.4; charset=utf-8');
      default:
        return send(res, 404, { error: `no route ${method} ${path}`, routes: ['GET /healthz', 'GET /config', 'PUT /config', 'GET /profiles', 'GET /journal[?wait=N&timeoutMs=T]', 'DELETE /journal', 'GET /metrics'] });
    }
  }

  close(): Promise<void> {
    const s = this.#server;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
