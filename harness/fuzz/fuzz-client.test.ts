import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendCase } from './fuzz-client.ts';
import type { FuzzExchange } from './fuzz-case.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

const exchange = (bodySize: number, chunked?: { chunkSize: number; delayMs: number }): FuzzExchange =>
  ({ request: { method: 'POST', path: '/p', headers: [], bodySize, hijack: false, ...(chunked ? { chunked } : {}) }, script: { turns: [], rest: 'valid' }, pick: 0 }) as unknown as FuzzExchange;

describe('sendCase', () => {
  // Stopping the upload at the answer left the request unfinished: the agent never freed its
  // socket, and the next request waited for the plane's keep-alive timeout (here: the
  // client's 10 s limit, far below the server's 60 s). With chunks big enough to meet
  // back-pressure, node:http's client stops relaying its socket's 'drain' once the response is
  // complete: the upload waited for a drain that never came (found replaying a node-proxy
  // fuzz case: 6 s, blamed on the plane).
  it.each([
    ['small chunks', 20_000, 1000, 2],
    ['chunks that meet back-pressure', 3 * 1024 * 1024, 65_536, 1],
  ])('finishes an upload answered early (%s), so the next request goes on the same connection', async (_n, size, chunkSize, delayMs) => {
    const seen: number[] = [];
    // Answers as soon as the headers arrive, then reads and drops the body (as a plane that
    // fails closed before the body should).
    server = createServer((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => seen.push(n));
      res.end('early\n');
    });
    server.keepAliveTimeout = 60_000;
    let conns = 0;
    server.on('connection', () => conns++);
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const [conn] = await sendCase({ connections: [[exchange(size, { chunkSize, delayMs }), exchange(10)]] }, { url, prefix: 'c', outsider: '127.0.0.1:9', hardTimeoutMs: 10_000 });
    expect(conn?.map((r) => r.status)).toEqual([200, 200]);
    expect(conns).toBe(1);
    expect(seen).toEqual([size, 10]);
  });
});
