import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Http1Connection, type Http1Request } from './http1-connection.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A server that echoes method, url, body length and trailers; `x-close` makes it say Connection: close. */
async function start(): Promise<{ port: number; seen: number[] }> {
  const seen: number[] = [];
  server = createServer((req, res) => {
    seen.push(req.socket.remotePort ?? 0);
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, bytes: Buffer.concat(parts).length, trailers: req.trailers });
      if (req.headers['x-close']) res.setHeader('connection', 'close');
      if (req.headers['x-chunked']) {
        res.write(body.slice(0, 5));
        res.end(body.slice(5));
      } else res.end(body);
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
  return { port: (server?.address() as AddressInfo).port, seen };
}

const req = (over: Partial<Http1Request> = {}): Http1Request => ({ method: 'POST', target: '/x', headers: {}, body: Buffer.from('hello'), timeoutMs: 5000, ...over });

describe('Http1Connection', () => {
  it('carries several requests on one socket and says when it was reused', async () => {
    const { port, seen } = await start();
    const c = await Http1Connection.open('127.0.0.1', port, 5000);
    const [a] = await c.exchange([req()], `127.0.0.1:${port}`, false);
    const [b] = await c.exchange([req({ headers: { 'x-chunked': '1' } })], `127.0.0.1:${port}`, true);
    c.close();
    expect(a?.status).toBe(200);
    expect(JSON.parse(b?.body.toString() ?? '{}')).toMatchObject({ bytes: 5 });
    expect(b?.reused).toBe(true);
    expect(new Set(seen).size).toBe(1);
  });

  it('pipelines: every request written first, answers read in order', async () => {
    const { port } = await start();
    const c = await Http1Connection.open('127.0.0.1', port, 5000);
    const out = await c.exchange([req({ target: '/1' }), req({ target: '/2', method: 'GET', body: undefined }), req({ target: '/3' })], `127.0.0.1:${port}`, false);
    c.close();
    expect(out.map((r) => JSON.parse(r.body.toString()).url)).toEqual(['/1', '/2', '/3']);
  });

  it('is no longer usable after Connection: close', async () => {
    const { port } = await start();
    const c = await Http1Connection.open('127.0.0.1', port, 5000);
    await c.exchange([req({ headers: { 'x-close': '1' } })], `127.0.0.1:${port}`, false);
    expect(c.usable).toBe(false);
    c.close();
  });

  it('sends chunked bodies with trailers, and waits for 100 Continue', async () => {
    const { port } = await start();
    const c = await Http1Connection.open('127.0.0.1', port, 5000);
    const [t] = await c.exchange([req({ body: Buffer.alloc(3000, 1), chunked: { chunkSize: 1000, delayMs: 1 }, trailers: { 'x-sum': 'abc' } })], `127.0.0.1:${port}`, false);
    expect(JSON.parse(t?.body.toString() ?? '{}')).toMatchObject({ bytes: 3000, trailers: { 'x-sum': 'abc' } });
    const [e] = await c.exchange([req({ expectContinue: true })], `127.0.0.1:${port}`, true);
    c.close();
    expect(e?.continued).toBe(true);
    expect(JSON.parse(e?.body.toString() ?? '{}')).toMatchObject({ bytes: 5 });
  });

  it('reports a connection closed without an answer', async () => {
    server = createServer((rq) => rq.socket.destroy());
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const c = await Http1Connection.open('127.0.0.1', port, 5000);
    const [r] = await c.exchange([req()], `127.0.0.1:${port}`, false);
    expect(r?.status).toBeUndefined();
    expect(r?.error).toMatch(/closed|ECONNRESET/);
  });
});
