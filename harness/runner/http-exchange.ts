// One HTTP request of a scenario step, over a fresh connection, with what the harness needs to
// judge it: status, headers, body (and its sha256), latency, and how it ended when no answer
// came (connection reset, client abort, client timeout).
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { sha256Hex } from './request-body.ts';

export interface ExchangeRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Send the body with Transfer-Encoding: chunked, in pieces of this size. */
  chunked?: { chunkSize: number; delayMs: number };
  abortAfterMs?: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ExchangeResult {
  status?: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  bodySha256: string;
  latencyMs: number;
  /** Wall clock (Date.now()) when the exchange ended: answered, failed or aborted (compared with journal timestamps). */
  endedAt: number;
  /** Set when no complete answer came: 'aborted' (by the client on purpose), 'timeout', or the socket error. */
  error?: string;
  aborted: boolean;
  /** Raw HTTP/1.1 connections: sent over a connection that had already carried an answer. */
  reused?: boolean;
  /** Expect: 100-continue: the plane answered 100 Continue first. */
  continued?: boolean;
  /** The id the request carried (eppkit-request-id), to find its EPP journal entry. */
  requestId?: string;
}

/** How a request that hit its deadline ends: `no answer within N ms`. */
export const NO_ANSWER = 'no answer within';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function exchange(req: ExchangeRequest): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    let abortedOnPurpose = false;
    const chunks: Buffer[] = [];
    let status: number | undefined;
    let headers: IncomingHttpHeaders = {};
    const timers: NodeJS.Timeout[] = [];
    const done = (error?: string): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      const body = Buffer.concat(chunks);
      const r: ExchangeResult = { headers, body, bodySha256: sha256Hex(body), latencyMs: performance.now() - started, endedAt: Date.now(), aborted: abortedOnPurpose };
      if (status !== undefined) r.status = status;
      if (error !== undefined) r.error = error;
      resolve(r);
    };
    const hdrs: Record<string, string> = { ...req.headers };
    if (req.body && !req.chunked) hdrs['content-length'] = String(req.body.length);
    if (req.body && req.chunked) hdrs['transfer-encoding'] = 'chunked';
    const cr = httpRequest(req.url, { method: req.method, headers: hdrs, agent: false });
    cr.on('response', (res) => {
      status = res.statusCode;
      headers = res.headers;
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => done());
      res.on('error', (e) => done(e.message));
      res.on('aborted', () => done('response aborted'));
    });
    cr.on('error', (e: NodeJS.ErrnoException) => done(abortedOnPurpose ? 'aborted' : e.code ?? e.message));
    cr.on('close', () => {
      if (!settled && status === undefined) done(abortedOnPurpose ? 'aborted' : 'connection closed without an answer');
    });
    timers.push(
      setTimeout(() => {
        cr.destroy();
        done(`${NO_ANSWER} ${req.timeoutMs} ms`);
      }, req.timeoutMs),
    );
    if (req.abortAfterMs !== undefined) {
      timers.push(
        setTimeout(() => {
          if (status !== undefined) return;
          abortedOnPurpose = true;
          cr.destroy();
          done('aborted');
        }, req.abortAfterMs),
      );
    }
    req.signal?.addEventListener('abort', () => {
      cr.destroy();
      done('cancelled (scenario timeout)');
    });
    void (async () => {
      if (!req.body) return void cr.end();
      if (!req.chunked) return void cr.end(req.body);
      const { chunkSize, delayMs } = req.chunked;
      for (let off = 0; off < req.body.length; off += chunkSize) {
        if (settled || cr.destroyed) return;
        const ok = cr.write(req.body.subarray(off, off + chunkSize));
        if (!ok) await new Promise<void>((r) => cr.once('drain', () => r()));
        if (delayMs > 0) await sleep(delayMs);
      }
      if (!cr.destroyed) cr.end();
    })().catch(() => {});
  });
}
