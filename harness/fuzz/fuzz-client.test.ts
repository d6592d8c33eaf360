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
  // client's 10 s limit, far below the server's 60 s).
  it('finishes an upload answered early, so the next request goes on the same connection', async () => {
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
    const [conn] = await sendCase({ connections: [[exchange(20_000, { chunkSize: 1000, delayMs: 2 }), exchange(10)]] }, { url, prefix: 'c', outsider: '127.0.0.1:9', hardTimeoutMs: 10_000 });
    expect(conn?.map((r) => r.status)).toEqual([200, 200]);
    expect(conns).toBe(1);
    expect(seen).toEqual([20_000, 10]);
  });

  // node:http's client stops relaying its socket's 'drain' once the response is complete: an
  // upload that met back-pressure after an early answer waited for a drain that never came, and
  // the next request went out only when the server's keep-alive timeout closed the connection
  // (found replaying a node-proxy fuzz case: 6 s, blamed on the plane).
  it('goes on uploading through back-pressure after an early answer', async () => {
    const seen: number[] = [];
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
    const size = 3 * 1024 * 1024;
    const [conn] = await sendCase({ connections: [[exchange(size, { chunkSize: 65_536, delayMs: 1 }), exchange(10)]] }, { url, prefix: 'c', outsider: '127.0.0.1:9', hardTimeoutMs: 10_000 });
    expect(conn?.map((r) => r.status)).toEqual([200, 200]);
    expect(conns).toBe(1);
    expect(seen).toEqual([size, 10]);
  });
});
