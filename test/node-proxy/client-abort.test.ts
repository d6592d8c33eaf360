// A client that goes away (mid-body, while the EPP thinks, while the upstream answers) cancels
// the EPP stream (the mock's journal ends `client-cancelled`) and the upstream request, and
// leaves nothing open: the proxy's active gauges return to zero and opened == closed streams.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { silentLogger } from '../../core/logger.ts';
import type { BodyMode } from '../../core/route-model.ts';
import { NodeProxy, type StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import { startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { eventually } from '../support/eventually.ts';
import { startScriptedEpp } from '../../proxies/node-proxy/test-support/scripted-epp.ts';

let backend: StartedEchoBackend;
let epp: StartedMockEpp;

beforeAll(async () => {
  backend = await startEchoBackend();
  epp = await new MockEpp({ endpoints: [backend.address] }).withPort(0).withAdminPort(null).start();
});
afterAll(async () => {
  await epp?.stop();
  await backend?.stop();
});

function proxy(bodyMode: BodyMode): Promise<StartedNodeProxy> {
  return new NodeProxy({ listen: '127.0.0.1:0', eppAddress: epp.address, bodyMode, timeoutMs: 10_000 }).withLogger(silentLogger).start();
}

/** Opens a raw connection, writes `head` (and `body`), returns the socket. */
function rawClient(url: string, text: string): Promise<net.Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => {
      s.write(text);
      resolve(s);
    });
    s.on('error', reject);
  });
}

async function nothingOpen(p: StartedNodeProxy): Promise<void> {
  await eventually(() => {
    const d = p.metrics.data;
    return d.active.requests === 0 && d.active.eppStreams === 0 && d.active.upstreamRequests === 0 && d.eppStreamsOpened === d.eppStreamsClosed;
  }, `nothing open: ${JSON.stringify(p.metrics.data.active)}`);
}

function aborts(p: StartedNodeProxy): number {
  return p.metrics.data.requests['client_abort|client_abort|499'] ?? 0;
}

describe.each(['buffered', 'streamed', 'none'] as const)('node-proxy client aborts, body mode %s', (mode) => {
  it('while the EPP is thinking: the EPP stream is cancelled', async () => {
    await using p = await proxy(mode);
    epp.clearJournal();
    const s = await rawClient(p.url, `GET /think HTTP/1.1\r\nHost: x\r\nx-eppkit-hang: true\r\n\r\n`);
    await eventually(() => epp.journal.length === 1, 'stream open at the EPP');
    s.destroy();
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.end?.how).toBe('client-cancelled');
    await nothingOpen(p);
    expect(aborts(p)).toBe(1);
    expect((await send(p.url)).status).toBe(200);
  });

  it('mid-body: the EPP stream is cancelled and nothing reaches the backend', async () => {
    await using p = await proxy(mode);
    epp.clearJournal();
    const before = backend.received.length;
    const s = await rawClient(p.url, `POST /mid-body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n${'a'.repeat(5000)}`);
    // The EPP call is open and the body is far from complete (5000 of 1,000,000 bytes): vanish.
    await eventually(() => epp.journal.length === 1, 'stream open at the EPP');
    s.destroy();
    await nothingOpen(p);
    expect(aborts(p)).toBe(1);
    const [e] = await epp.waitForJournal(1, 5000);
    // The stream ended. (The mock files a client RST_STREAM that arrives while it holds the
    // headers answer under `completed`; the scripted-EPP test below checks the RST itself.)
    expect(e?.end).toBeDefined();
    if (mode === 'none') expect(e?.end?.how).toBe('completed');
    else expect(e?.pick).toBeUndefined();
    expect(backend.received.slice(before).some((r) => r.url === '/mid-body')).toBe(false);
    expect((await send(p.url, { body: 'ok' })).status).toBe(200);
  });

  it('while the upstream answers: the upstream request is cut too', async () => {
    await using p = await proxy(mode);
    const cut = backend.cutOff();
    const s = await rawClient(p.url, `GET /__slow?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n`);
    await eventually(() => p.metrics.data.active.upstreamRequests === 1, 'upstream request in flight');
    s.destroy();
    await nothingOpen(p);
    await eventually(() => backend.cutOff() === cut + 1, 'backend saw the request cut off');
    expect(aborts(p)).toBe(1);
  });
});

describe('node-proxy client abort mid-body, seen by a scripted EPP', () => {
  it.each(['buffered', 'streamed'] as const)('%s: the EPP stream is reset (cancelled), not half-closed', async (mode) => {
    await using s = await startScriptedEpp(() => undefined);
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', eppAddress: s.address, bodyMode: mode, timeoutMs: 10_000 }).withLogger(silentLogger).start();
    const c = await rawClient(p.url, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'b'.repeat(3000)}`);
    await eventually(() => s.streams.length === 1, 'stream open at the EPP');
    c.destroy();
    await eventually(() => s.ends[0] !== 'open', 'stream ended at the EPP');
    expect(s.ends[0]).toBe('cancelled');
    await nothingOpen(p);
  });
});

describe('node-proxy many aborts leave nothing behind', () => {
  it('50 clients vanishing at random points', async () => {
    await using p = await proxy('buffered');
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 50; i++) {
      const kind = i % 3;
      const text =
        kind === 0
          ? `GET / HTTP/1.1\r\nHost: x\r\nx-eppkit-delay-ms: 200\r\n\r\n`
          : kind === 1
            ? `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n12345`
            : `GET /__slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n`;
      sockets.push(await rawClient(p.url, text));
    }
    // Vanish once every request is in the proxy (waiting on the EPP, its body or the backend).
    const seen = (): number => p.metrics.data.active.requests + Object.values(p.metrics.data.requests).reduce((t, n) => t + n, 0);
    await eventually(() => seen() >= sockets.length, `all ${sockets.length} requests seen by the proxy`);
    for (const s of sockets) s.destroy();
    await nothingOpen(p);
    expect((await send(p.url)).status).toBe(200);
  });
});

describe('node-proxy under a mixed load leaves nothing behind', () => {
  it.each(['grpc-js', 'http2', 'wire'] as const)('%s client: 400 mixed requests (picks, errors, timeouts, immediates, aborts)', async (eppClient) => {
    await using p = await new NodeProxy({ listen: '127.0.0.1:0', eppAddress: epp.address, bodyMode: 'streamed', timeoutMs: 1000, eppClient, responseProcessing: true })
      .withLogger(silentLogger)
      .start();
    const kinds: Array<Record<string, string>> = [
      {},
      { 'x-eppkit-grpc-error': 'INTERNAL' },
      { 'x-eppkit-hang': 'true' },
      { 'x-eppkit-immediate': '503' },
      { 'x-eppkit-endpoint': 'garbage' },
      { 'x-eppkit-reset': 'true' },
    ];
    const work: Array<Promise<unknown>> = [];
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 400; i++) {
      if (i % 10 === 9) {
        sockets.push(await rawClient(p.url, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc`));
        continue;
      }
      work.push(send(p.url, { headers: kinds[i % kinds.length] as Record<string, string>, body: `body-${i}` }).catch(() => undefined));
    }
    await Promise.all(work);
    for (const s of sockets) s.destroy();
    await nothingOpen(p);
    const total = Object.values(p.metrics.data.requests).reduce((a, b) => a + b, 0);
    expect(total, JSON.stringify(p.metrics.data.requests)).toBe(400);
    expect((await send(p.url)).status).toBe(200);
  });
});

