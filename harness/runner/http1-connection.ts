// One client HTTP/1.1 connection on a raw socket, for what node:http's client hides: several
// requests on ONE keep-alive connection (and knowing that it really was the same one),
// pipelining (every request written before the first answer is read), Expect: 100-continue
// and request trailers. Each answer becomes an ExchangeResult like a fresh-connection exchange.
import { connect, type Socket } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { NO_ANSWER, type ExchangeResult } from './http-exchange.ts';
import { sha256Hex } from './request-body.ts';

export interface Http1Request {
  method: string;
  /** Path and query, as sent on the request line. */
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
  chunked?: { chunkSize: number; delayMs: number };
  trailers?: Record<string, string>;
  /** Send `Expect: 100-continue` and hold the body until 100 (or a final answer) comes, at most 1 s, as curl does. */
  expectContinue?: boolean;
  abortAfterMs?: number;
  timeoutMs: number;
}

/** How long a client waits for 100 Continue before sending the body anyway (curl's default). */
const CONTINUE_WAIT_MS = 1000;
const MAX_HEAD = 64 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class Closed extends Error {}

export class Http1Connection {
  readonly #sock: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;
  #error: string | undefined;
  #wake: (() => void) | undefined;
  /** Responses completed on this connection. */
  answered = 0;
  /** The plane said `Connection: close` (or closed) after the last answer: do not reuse. */
  closing = false;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      this.#notify();
    });
    sock.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
    sock.on('close', () => {
      this.#ended = true;
      this.#notify();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      this.#error = e.code ?? e.message;
      this.#ended = true;
      this.#notify();
    });
  }

  static open(host: string, port: number, timeoutMs: number): Promise<Http1Connection> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host, port });
      sock.setNoDelay(true);
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(t);
        sock.removeAllListeners('error');
        resolve(new Http1Connection(sock));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        reject(new Error(e.code ?? e.message));
      });
    });
  }

  /** Still usable for another request: open, not announced closing. */
  get usable(): boolean {
    return !this.#ended && !this.closing && !this.#sock.destroyed;
  }

  get localPort(): number {
    return this.#sock.localPort ?? 0;
  }

  close(): void {
    this.#sock.destroy();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Resolves when more bytes arrived or the socket ended; rejects past the deadline. */
  #more(deadline: number): Promise<void> {
    if (this.#ended) return Promise.reject(new Closed(this.#error ?? 'connection closed by the data plane'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        reject(new Error(NO_ANSWER));
      }, Math.max(0, deadline - performance.now()));
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  #take(n: number): Buffer {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  async #line(deadline: number): Promise<string> {
    for (;;) {
      const i = this.#buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.#take(i + 2).toString('latin1');
        return l.slice(0, -2);
      }
      if (this.#buf.length > MAX_HEAD) throw new Error('line too long in the answer');
      await this.#more(deadline);
    }
  }

  async #bytes(n: number, deadline: number): Promise<Buffer> {
    while (this.#buf.length < n) await this.#more(deadline);
    return Buffer.from(this.#take(n));
  }

  /** Reads one response head (status line and headers). */
  async #head(deadline: number): Promise<{ status: number; version: string; headers: IncomingHttpHeaders }> {
    const statusLine = await this.#line(deadline);
    const m = /^HTTP\/(1\.[01]) (\d{3})/.exec(statusLine);
    if (!m) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const headers: IncomingHttpHeaders = {};
    for (;;) {
      const l = await this.#line(deadline);
      if (l === '') break;
      const c = l.indexOf(':');
      if (c <= 0) throw new Error(`malformed header line in the answer: ${JSON.stringify(l.slice(0, 80))}`);
      const k = l.slice(0, c).trim().toLowerCase();
      const v = l.slice(c + 1).trim();
      const prev = headers[k];
      if (k === 'set-cookie') headers[k] = [...((prev as string[] | undefined) ?? []), v];
      else headers[k] = prev === undefined ? v : `${String(prev)}, ${v}`;
    }
    return { status: Number(m[2]), version: m[1] as string, headers };
  }

  async #body(method: string, status: number, headers: IncomingHttpHeaders, deadline: number): Promise<Buffer> {
    if (method === 'HEAD' || status === 204 || status === 304) return Buffer.alloc(0);
    if (/chunked/i.test(String(headers['transfer-encoding'] ?? ''))) {
      const parts: Buffer[] = [];
      for (;;) {
        const size = Number.parseInt((await this.#line(deadline)).split(';')[0] ?? '', 16);
        if (!Number.isFinite(size) || size < 0) throw new Error('bad chunk size in the answer');
        if (size === 0) break;
        parts.push(await this.#bytes(size, deadline));
        await this.#bytes(2, deadline);
      }
      while ((await this.#line(deadline)) !== '');
      return Buffer.concat(parts);
    }
    const cl = headers['content-length'];
    if (cl !== undefined) return this.#bytes(Number(cl), deadline);
    // No length: the body runs until the plane closes the connection.
    this.closing = true;
    for (;;) {
      try {
        await this.#more(deadline);
      } catch (e) {
        if (e instanceof Closed) return Buffer.from(this.#take(this.#buf.length));
        throw e;
      }
    }
  }

  /** Reads one full answer (skipping 1xx), noting whether 100 Continue came first. */
  async #response(method: string, deadline: number, onInterim?: () => void): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; continued: boolean }> {
    let continued = false;
    for (;;) {
      const h = await this.#head(deadline);
      if (h.status >= 100 && h.status < 200 && h.status !== 101) {
        if (h.status === 100) continued = true;
        onInterim?.();
        continue;
      }
      const body = await this.#body(method, h.status, h.headers, deadline);
      const conn = String(h.headers.connection ?? '').toLowerCase();
      if (conn.includes('close') || (h.version === '1.0' && !conn.includes('keep-alive'))) this.closing = true;
      this.answered++;
      return { status: h.status, headers: h.headers, body, continued };
    }
  }

  #headBytes(r: Http1Request, host: string): Buffer {
    const hdrs: Record<string, string> = { host, ...r.headers };
    if (r.body && r.chunked) hdrs['transfer-encoding'] = 'chunked';
    else if (r.body) hdrs['content-length'] = String(r.body.length);
    if (r.expectContinue) hdrs.expect = '100-continue';
    if (r.trailers) hdrs.trailer = Object.keys(r.trailers).join(', ');
    let s = `${r.method} ${r.target} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(hdrs)) s += `${k}: ${v}\r\n`;
    return Buffer.from(`${s}\r\n`, 'latin1');
  }

  async #writeBody(r: Http1Request): Promise<void> {
    if (!r.body) return;
    if (!r.chunked) return void this.#sock.write(r.body);
    const { chunkSize, delayMs } = r.chunked;
    for (let off = 0; off < r.body.length; off += chunkSize) {
      if (this.#sock.destroyed) return;
      const piece = r.body.subarray(off, off + chunkSize);
      const ok = this.#sock.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
      if (!ok) await new Promise<void>((res) => this.#sock.once('drain', () => res()));
      if (delayMs > 0 && off + chunkSize < r.body.length) await sleep(delayMs);
    }
    let end = '0\r\n';
    for (const [k, v] of Object.entries(r.trailers ?? {})) end += `${k}: ${v}\r\n`;
    this.#sock.write(`${end}\r\n`);
  }

  /**
   * Sends the requests and reads their answers in order. More than one request = pipelined:
   * every request is written before the first answer is read.
   */
  async exchange(reqs: readonly Http1Request[], host: string, reused: boolean): Promise<Array<ExchangeResult & { reused: boolean; continued: boolean }>> {
    const out: Array<ExchangeResult & { reused: boolean; continued: boolean }> = [];
    const started = performance.now();
    const fail = (error: string, aborted = false): ExchangeResult & { reused: boolean; continued: boolean } => ({
      headers: {},
      body: Buffer.alloc(0),
      bodySha256: sha256Hex(Buffer.alloc(0)),
      latencyMs: performance.now() - started,
      endedAt: Date.now(),
      error,
      aborted,
      reused,
      continued: false,
    });
    let abortTimer: NodeJS.Timeout | undefined;
    let abortedOnPurpose = false;
    try {
      const first = reqs[0];
      if (reqs.length === 1 && first?.expectContinue) {
        // Expect: 100-continue: the head first, then wait for 100 (or a final answer).
        this.#sock.write(this.#headBytes(first, host));
        const deadline = performance.now() + first.timeoutMs;
        let sent = false;
        const sendBody = (): void => {
          if (sent) return;
          sent = true;
          void this.#writeBody(first);
        };
        const fallback = setTimeout(sendBody, CONTINUE_WAIT_MS);
        try {
          const r = await this.#response(first.method, deadline, sendBody);
          out.push({ ...r, bodySha256: sha256Hex(r.body), latencyMs: performance.now() - started, endedAt: Date.now(), aborted: false, reused });
        } finally {
          clearTimeout(fallback);
        }
        // A final answer without 100 and without the body: the body was never sent, the plane
        // must close or skip it; this connection is not reused.
        if (!sent) this.closing = true;
        return out;
      }
      for (const r of reqs) {
        this.#sock.write(this.#headBytes(r, host));
        if (r.abortAfterMs !== undefined) {
          const ms = r.abortAfterMs;
          abortTimer = setTimeout(() => {
            abortedOnPurpose = true;
            this.#sock.destroy();
          }, ms);
        }
        await this.#writeBody(r);
      }
      for (const r of reqs) {
        const t0 = out.length === 0 ? started : performance.now();
        const a = await this.#response(r.method, performance.now() + r.timeoutMs);
        out.push({ status: a.status, headers: a.headers, body: a.body, bodySha256: sha256Hex(a.body), latencyMs: performance.now() - t0, endedAt: Date.now(), aborted: false, reused, continued: a.continued });
      }
    } catch (e) {
      const limit = Math.max(...reqs.map((r) => r.timeoutMs));
      const msg = abortedOnPurpose ? 'aborted' : (e as Error).message === NO_ANSWER ? `${NO_ANSWER} ${limit} ms` : e instanceof Closed ? `${(e as Error).message} (no answer${this.answered > 0 ? ` to request ${this.answered + 1} on this keep-alive connection` : ''})` : (e as Error).message;
      if (msg.startsWith(NO_ANSWER) || abortedOnPurpose) this.#sock.destroy();
      this.closing = true;
      while (out.length < reqs.length) out.push(fail(msg, abortedOnPurpose));
    } finally {
      if (abortTimer) clearTimeout(abortTimer);
    }
    return out;
  }
}
