// node-proxy's HTTP/1.1 client to the endpoints (undici, proxies/node-proxy/upstream-client.ts)
// against backends that write their answers byte for byte: interim 1xx answers, close-delimited
// and chunked bodies, a broken status line, HEAD, keep-alive reuse, framing of a GET's body, and
// what an EPP's mutations can and cannot make it send. Each answer is checked at the client and
// the proxy is left with nothing open.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.ts';
import { startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { NodeProxy, type StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { nothingOpen } from '../support/nothing-open.ts';

/** A backend that reads each request head and writes `answer(head)` as raw bytes. */
interface RawBackend extends AsyncDisposable {
  address: string;
  connections: () => number;
  heads: string[];
}

async function rawBackend(answer: (head: string, socket: net.Socket) => void): Promise<RawBackend> {
  let connections = 0;
  const heads: string[] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        heads.push(head);
        answer(head, socket);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => connections,
    heads,
    [Symbol.asyncDispose]: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // The proxy's kept-alive connections would hold close() open.
        for (const c of open) c.destroy();
      }),
  };
}

let epp: StartedMockEpp;
let echo: StartedEchoBackend;

beforeAll(async () => {
  echo = await startEchoBackend();
  epp = await new MockEpp({
    endpoints: [echo.address],
    rules: [
      { match: { path: { regex: '^/no-slash' } }, action: { setHeaders: { ':path': 'no-slash' } } },
      { match: { path: { regex: '^/double-length' } }, action: { appendHeaders: { 'content-length': '4' } } },
      { match: { path: { regex: '^/hop-by-hop' } }, action: { setHeaders: { 'transfer-encoding': 'gzip', connection: 'close', upgrade: 'h2c', expect: 'nothing', 'x-kept': 'yes' } } },
    ],
  })
    .withPort(0)
    .withAdminPort(null)
    .start();
});
afterAll(async () => {
  await epp?.stop();
  await echo?.stop();
});

function proxy(bodyMode: 'buffered' | 'none' = 'buffered'): Promise<StartedNodeProxy> {
  return new NodeProxy({ listen: '127.0.0.1:0', eppAddress: epp.address, failureMode: 'close', bodyMode, timeoutMs: 2000 }).withLogger(silentLogger).start();
}

const to = (b: RawBackend) => ({ 'x-eppkit-endpoint': b.address });

describe('node-proxy upstream HTTP/1.1', () => {
  it('skips an interim 103 and relays the final answer', async () => {
    await using b = await rawBackend((_h, s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal'));
    await using p = await proxy();
    const r = await send(p.url, { headers: to(b) });
    expect(r.status).toBe(200);
    expect(r.headers['x-final']).toBe('yes');
    expect(r.text()).toBe('final');
    await nothingOpen(p);
  });

  it('relays a body delimited by the close of the connection, whole', async () => {
    const body = 'x'.repeat(100_000);
    await using b = await rawBackend((_h, s) => s.end(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${body}`));
    await using p = await proxy();
    const r = await send(p.url, { headers: to(b) });
    expect(r.status).toBe(200);
    expect(r.text()).toBe(body);
    // ...and the next request opens a new connection.
    expect((await send(p.url, { headers: to(b) })).text()).toBe(body);
    expect(b.connections()).toBe(2);
    await nothingOpen(p);
  });

  it('relays a chunked body with trailers, whole, and reuses the connection', async () => {
    await using b = await rawBackend((_h, s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n'));
    await using p = await proxy();
    for (let i = 0; i < 3; i++) expect((await send(p.url, { headers: to(b) })).text()).toBe('hello world');
    expect(b.connections()).toBe(1);
    await nothingOpen(p);
  });

  // A 100 Continue it did not ask for (the proxy never sends Expect upstream) undici takes as a
  // broken answer, though RFC 9110 asks clients to skip any 1xx: a defined outcome, documented
  // in docs/node-proxy.md.
  it.each([
    ['a status line that is not HTTP', 'HTTP/1.1 OK-ish\r\n\r\n'],
    ['an unsolicited 100 Continue', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'],
  ])('answers 502 upstream_reset to %s, and keeps serving', async (_n, answer) => {
    await using b = await rawBackend((_h, s) => s.write(answer));
    await using p = await proxy();
    const r = await send(p.url, { headers: to(b) });
    expect(r.status).toBe(502);
    expect(r.headers['x-eppkit-reason']).toBe('upstream_reset');
    expect((await send(p.url)).status).toBe(200);
    await nothingOpen(p);
  });

  it('answers HEAD with the length and no body, on a connection that serves on', async () => {
    await using b = await rawBackend((h, s) => s.write(h.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    await using p = await proxy();
    const r = await send(p.url, { method: 'HEAD', headers: to(b) });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('1234');
    expect(r.body.length).toBe(0);
    expect((await send(p.url, { headers: to(b) })).text()).toBe('ok');
    await nothingOpen(p);
  });

  it('frames a GET body of unknown length as chunked, byte for byte', async () => {
    await using p = await proxy();
    const chunks = ['alpha-', 'beta-', 'gamma'];
    const r = await send(p.url, { method: 'GET', path: '/__echo', chunks });
    expect(r.status).toBe(200);
    const seen = r.json<{ request: { bodyBytes: number; bodySha256: string } }>().request;
    expect(seen.bodyBytes).toBe(16);
    expect(seen.bodySha256).toBe(createHash('sha256').update(chunks.join('')).digest('hex'));
    await nothingOpen(p);
  });

  it('sends no framing or connection header an EPP set; the others go through', async () => {
    await using b = await rawBackend((_h, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    await using p = await proxy();
    const r = await send(p.url, { path: '/hop-by-hop', headers: to(b), body: 'four' });
    expect(r.status).toBe(200);
    const head = (b.heads[0] ?? '').toLowerCase();
    expect(head).toContain('x-kept: yes');
    expect(head).toContain('content-length: 4');
    expect(head).not.toMatch(/transfer-encoding|upgrade|expect:|connection: close/);
    await nothingOpen(p);
  });

  // A buffered body is sent with the length of the bytes in hand, whatever the EPP appended;
  // a body passed through (mode none) keeps the client's length, so a second one cannot be sent.
  it.each([
    ['a path without a leading slash', '/no-slash', 'buffered'],
    ['a second Content-Length', '/double-length', 'none'],
  ] as const)('answers 500 bad_upstream_request to %s from the EPP, sends nothing, and keeps serving', async (_n, path, bodyMode) => {
    await using b = await rawBackend((_h, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    await using p = await proxy(bodyMode);
    const r = await send(p.url, { path, headers: to(b), body: 'four' });
    expect(r.status).toBe(500);
    expect(r.headers['x-eppkit-reason']).toBe('bad_upstream_request');
    expect(b.heads).toEqual([]);
    expect((await send(p.url, { headers: to(b) })).text()).toBe('ok');
    await nothingOpen(p);
  });
});
