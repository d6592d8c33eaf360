// Shim mode, NGINX Gateway Fabric's sidecar contract: 400 without X-EPP-Host/X-EPP-Port,
// headers and the whole body to that EPP, the pick in X-Gateway-Destination-Endpoint (200),
// an ImmediateResponse's status, and 500/504 with an empty body on EPP failure.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { silentLogger } from '../../core/logger.ts';
import { NodeProxy, type StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import { pattern } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { createHash } from 'node:crypto';

const POOL = ['10.1.2.3:8000', '10.1.2.4:8000'];
let epp: StartedMockEpp;
let shim: StartedNodeProxy;
let eppHeaders: Record<string, string>;

beforeAll(async () => {
  epp = await new MockEpp({ endpoints: POOL }).withPort(0).withAdminPort(null).start();
  shim = await new NodeProxy({ listen: '127.0.0.1:0', shim: true, timeoutMs: 1000 }).withLogger(silentLogger).start();
  eppHeaders = { 'X-EPP-Host': '127.0.0.1', 'X-EPP-Port': String(epp.port) };
});
afterAll(async () => {
  await shim?.stop();
  await epp?.stop();
});

describe('node-proxy --shim', () => {
  it.each([
    ['both missing', {}],
    ['X-EPP-Port missing', { 'X-EPP-Host': '127.0.0.1' }],
    ['X-EPP-Host missing', { 'X-EPP-Port': '9002' }],
    ['port not a number', { 'X-EPP-Host': '127.0.0.1', 'X-EPP-Port': 'http' }],
  ])('answers 400 when %s', async (_n, headers) => {
    const r = await send(shim.url, { headers: headers as Record<string, string>, body: '{"model":"m"}' });
    expect(r.status).toBe(400);
    expect(r.body.length).toBe(0);
  });

  it('sends the headers and the whole body to the named EPP and returns the pick', async () => {
    epp.clearJournal();
    const body = Buffer.from(JSON.stringify({ model: 'llama', prompt: 'x'.repeat(100_000) }));
    const r = await send(shim.url, {
      method: 'POST',
      path: '/v1/completions?stream=false',
      headers: { ...eppHeaders, 'Content-Type': 'application/json', 'test-epp-endpoint-selection': POOL[1] as string },
      body,
    });
    expect(r.status).toBe(200);
    expect(r.headers['x-gateway-destination-endpoint']).toBe(POOL[1]);
    expect(r.body.length).toBe(0);
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.requestHeaders?.[':method']).toBe('POST');
    expect(e?.requestHeaders?.[':path']).toBe('/v1/completions?stream=false');
    expect(e?.requestHeaders?.['content-type']).toBe('application/json');
    expect(e?.requestHeaders?.['x-epp-host']).toBeUndefined();
    expect(e?.requestBody?.size).toBe(body.length);
    expect(e?.requestBody?.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(e?.end?.how).toBe('completed');
  });

  it('sends a body-less request as headers with end_of_stream', async () => {
    epp.clearJournal();
    const r = await send(shim.url, { headers: eppHeaders });
    expect(r.status).toBe(200);
    expect(POOL).toContain(r.headers['x-gateway-destination-endpoint']);
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.phases[0]?.endOfStream).toBe(true);
  });

  it('forwards a binary chunked body whole', async () => {
    epp.clearJournal();
    const parts = [pattern(1000), pattern(70_000)];
    const r = await send(shim.url, { headers: eppHeaders, chunks: parts });
    expect(r.status).toBe(200);
    const [e] = await epp.waitForJournal(1, 5000);
    expect(e?.requestBody?.size).toBe(71_000);
  });

  it('turns an ImmediateResponse into its status', async () => {
    const r = await send(shim.url, { headers: { ...eppHeaders, 'x-eppkit-immediate': '429' }, body: 'x' });
    expect(r.status).toBe(429);
    expect(r.headers['x-gateway-destination-endpoint']).toBeUndefined();
  });

  it.each([
    ['a gRPC error', { 'x-eppkit-grpc-error': 'INTERNAL' }, 500],
    ['a reset stream', { 'x-eppkit-reset': 'true' }, 500],
    ['a garbage endpoint', { 'x-eppkit-endpoint': 'garbage' }, 500],
    ['a timeout', { 'x-eppkit-hang': 'true' }, 504],
  ])('answers %s with an empty-bodied failure status', async (_n, extra, status) => {
    const r = await send(shim.url, { headers: { ...eppHeaders, ...extra }, body: 'x' });
    expect(r.status).toBe(status);
    expect(r.body.length).toBe(0);
    expect(r.headers['x-gateway-destination-endpoint']).toBeUndefined();
  });

  it('answers 500 when the named EPP is unreachable, and keeps serving', async () => {
    const r = await send(shim.url, { headers: { 'X-EPP-Host': '127.0.0.1', 'X-EPP-Port': '1' } });
    expect(r.status).toBe(500);
    expect(r.body.length).toBe(0);
    expect((await send(shim.url, { headers: eppHeaders })).status).toBe(200);
  });

  it('leaves no request or EPP stream open', async () => {
    const d = shim.metrics.data;
    expect(d.active.requests).toBe(0);
    // Streams close asynchronously after the answer.
    for (let i = 0; i < 100 && d.eppStreamsOpened !== d.eppStreamsClosed; i++) await new Promise((r) => setTimeout(r, 20));
    expect(d.eppStreamsOpened).toBe(d.eppStreamsClosed);
  });
});
