// Sends a fuzz case's requests: each connection is one keep-alive agent with one socket, its
// requests in order (so the second and third requests reuse the first one's connection, where
// third-party planes broke, facts §6); connections at once. Records, per request, what came
// back and whether the socket was a reused one.
import { Agent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { filler } from '../../mock-epp/fuzz-script.ts';
import { DESTINATION_ENDPOINT_HEADER } from '../../core/proto.ts';
import { FUZZ_CASE_HEADER } from '../../mock-epp/fuzz-session.ts';
import type { FuzzCase, FuzzRequest } from './fuzz-case.ts';

export interface FuzzResponse {
  key: string;
  status?: number;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
  /** The first bytes of the body (for the report). */
  bodyHead: string;
  latencyMs: number;
  /** No complete answer: 'aborted' (on purpose), 'timeout' (the client's hard limit), or the socket error. */
  error?: string;
  aborted: boolean;
  reusedSocket: boolean;
}

export interface SendOptions {
  url: string;
  /** Case key prefix; request i of the case gets `${prefix}.${i}`. */
  prefix: string;
  /** The address a hijacking client names (a backend outside the pool). */
  outsider: string;
  /** Hard client limit per request, ms (the oracle's time bound is tighter). */
  hardTimeoutMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sendOne(agent: Agent, o: SendOptions, key: string, r: FuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    let aborted = false;
    let reused = false;
    let status: number | undefined;
    let headers: IncomingHttpHeaders = {};
    let bytes = 0;
    const head: Buffer[] = [];
    let headLen = 0;
    const timers: NodeJS.Timeout[] = [];
    const done = (error?: string): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      const out: FuzzResponse = { key, headers, bodyBytes: bytes, bodyHead: Buffer.concat(head).toString('utf8'), latencyMs: performance.now() - started, aborted, reusedSocket: reused };
      if (status !== undefined) out.status = status;
      if (error !== undefined) out.error = error;
      resolve(out);
    };
    const hdrs: Record<string, string> = {};
    for (const [k, v] of r.headers) hdrs[k] = v;
    hdrs[FUZZ_CASE_HEADER] = key;
    if (r.hijack) hdrs[DESTINATION_ENDPOINT_HEADER] = o.outsider;
    const body = r.bodySize > 0 ? filler(r.bodySize, 3) : undefined;
    if (body && !r.chunked) hdrs['content-length'] = String(body.length);
    if (body && r.chunked) hdrs['transfer-encoding'] = 'chunked';
    let cr: ReturnType<typeof httpRequest>;
    try {
      // Headers up to 4 MiB: an EPP may set a huge one (the grammar's oversized values) and the plane relay it.
      cr = httpRequest(`${o.url}${r.path}`, { method: r.method, headers: hdrs, agent, maxHeaderSize: 4 * 1024 * 1024 });
    } catch (e) {
      // Node refuses to send some headers at all: nothing reached the plane.
      done(`client refused the request: ${(e as Error).message}`);
      return;
    }
    cr.on('socket', () => {
      reused = cr.reusedSocket;
    });
    cr.on('response', (res) => {
      status = res.statusCode;
      headers = res.headers;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        if (headLen < 512) {
          head.push(d.subarray(0, 512 - headLen));
          headLen += Math.min(d.length, 512 - headLen);
        }
      });
      res.on('end', () => done());
      res.on('error', (e) => done(e.message));
      res.on('aborted', () => done('response aborted'));
    });
    cr.on('error', (e: NodeJS.ErrnoException) => done(aborted ? 'aborted' : (e.code ?? e.message)));
    cr.on('close', () => {
      if (!settled && status === undefined) done(aborted ? 'aborted' : 'connection closed without an answer');
    });
    timers.push(
      setTimeout(() => {
        cr.destroy();
        done('timeout');
      }, o.hardTimeoutMs),
    );
    if (r.abortAfterMs !== undefined) {
      timers.push(
        setTimeout(() => {
          if (status !== undefined || settled) return;
          aborted = true;
          cr.destroy();
          done('aborted');
        }, r.abortAfterMs),
      );
    }
    void (async () => {
      if (!body) return void cr.end();
      if (!r.chunked) return void cr.end(body);
      // An answer that comes before the body has been sent does not stop the upload: a client
      // sends its whole request, and the plane must read and drop the rest to keep the
      // connection. Stopping here left the request unfinished, so the agent could not reuse
      // its socket and the next request waited for the plane's keep-alive timeout (~5 s).
      for (let off = 0; off < body.length; off += r.chunked.chunkSize) {
        if (cr.destroyed) return;
        const ok = cr.write(body.subarray(off, off + r.chunked.chunkSize));
        if (!ok) await drained(cr);
        if (r.chunked.delayMs > 0) await sleep(r.chunked.delayMs);
      }
      if (!cr.destroyed) cr.end();
    })().catch(() => {});
  });
}

/**
 * Waits until a request can take more body. node:http's client stops relaying its socket's
 * 'drain' to the request once the response is complete, so an upload still going after an
 * early answer would wait forever and hold the connection until the plane's keep-alive timeout
 * (a 6 s "time" failure that was the client's, not the plane's): the socket's own drain counts.
 */
function drained(cr: ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const socket = cr.socket;
    const go = (): void => {
      cr.off('drain', go);
      cr.off('close', go);
      socket?.off('drain', go);
      resolve();
    };
    cr.once('drain', go);
    cr.once('close', go);
    socket?.once('drain', go);
  });
}

/** Runs every connection of the case at once; returns the responses in exchange order (connection by connection). */
export async function sendCase(c: FuzzCase, o: SendOptions): Promise<FuzzResponse[][]> {
  let i = 0;
  const keyed = c.connections.map((conn) => conn.map((x) => ({ x, key: `${o.prefix}.${i++}` })));
  return Promise.all(
    keyed.map(async (conn) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const out: FuzzResponse[] = [];
        for (const { x, key } of conn) out.push(await sendOne(agent, o, key, x.request));
        return out;
      } finally {
        agent.destroy();
      }
    }),
  );
}

/** The case key of exchange `index` (flattened order) under `prefix`. */
export function caseKey(prefix: string, index: number): string {
  return `${prefix}.${index}`;
}
