// Every EPP failure in both failure modes (Envoy's table: fail-close 500, 504 on timeout;
// fail-open goes to a fallback endpoint), immediate responses, upstream failures, malformed
// and oversized requests: each gets its defined status and reason, and the proxy keeps
// serving with nothing left open.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { silentLogger } from '../../core/logger.ts';
import type { FailureMode } from '../../core/route-model.ts';
import { NodeProxy, type StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import type { NodeProxyInput } from '../../proxies/node-proxy/node-proxy-config.ts';
import { startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { send } from '../../proxies/node-proxy/test-support/http-send.ts';
import { eventually } from '../support/eventually.ts';
import { nothingOpen } from '../support/nothing-open.ts';
import { startScriptedEpp } from '../../proxies/node-proxy/test-support/scripted-epp.ts';
import { setHeaderOption } from '../../core/headers.ts';

let picked: StartedEchoBackend;
let fallback: StartedEchoBackend;
let epp: StartedMockEpp;

beforeAll(async () => {
  picked = await startEchoBackend();
  fallback = await startEchoBackend();
  epp = await new MockEpp({
    endpoints: [picked.address],
    rules: [
      { match: { path: { regex: 'wrong-phase' } }, action: { malformed: 'wrong-phase' } },
      { match: { path: { regex: 'empty-oneof' } }, action: { malformed: 'empty-oneof' } },
      { match: { path: { regex: 'imm-full' } }, action: { immediate: { status: 429, headers: { 'retry-after': '3', 'x-shed': 'yes' }, body: 'slow down' } } },
    ],
  })
    .withPort(0)
    .withAdminPort(null)
    .start();
});
afterAll(async () => {
  await epp?.stop();
  await picked?.stop();
  await fallback?.stop();
});

function proxy(mode: FailureMode, extra: Partial<NodeProxyInput> = {}): Promise<StartedNodeProxy> {
  return new NodeProxy({
    listen: '127.0.0.1:0',
    eppAddress: epp.address,
    failureMode: mode,
    fallbackEndpoints: [fallback.address],
    timeoutMs: 1000,
    ...extra,
  })
    .withLogger(silentLogger)
    .start();
}

function count(p: StartedNodeProxy, outcome: string, reason: string): number {
  let n = 0;
  for (const [k, v] of Object.entries(p.metrics.data.requests)) if (k.startsWith(`${outcome}|${reason}|`)) n += v;
  return n;
}

// [name, request, reason, fail-close status]
const EPP_FAILURES: Array<[string, { path?: string; headers?: Record<string, string> }, string, number]> = [
  ['gRPC error INTERNAL', { headers: { 'x-eppkit-grpc-error': 'INTERNAL' } }, 'epp_grpc_error', 500],
  ['gRPC error UNAVAILABLE from the EPP', { headers: { 'x-eppkit-grpc-error': 'RESOURCE_EXHAUSTED' } }, 'epp_grpc_error', 500],
  ['stream reset', { headers: { 'x-eppkit-reset': 'true' } }, 'epp_grpc_error', 500],
  ['EPP hangs (timeout)', { headers: { 'x-eppkit-hang': 'true' } }, 'epp_timeout', 504],
  ['EPP slower than the timeout', { headers: { 'x-eppkit-delay-ms': '30000' } }, 'epp_timeout', 504],
  ['EPP closes the stream with OK first', { headers: { 'x-eppkit-close': 'true' } }, 'epp_closed', 500],
  ['garbage endpoint', { headers: { 'x-eppkit-endpoint': 'not-an-endpoint' } }, 'endpoint_invalid', 500],
  ['host name instead of an IP', { headers: { 'x-eppkit-endpoint': 'localhost:8080' } }, 'endpoint_invalid', 500],
  ['port out of range', { headers: { 'x-eppkit-endpoint': '127.0.0.1:70000' } }, 'endpoint_invalid', 500],
  ['empty endpoint', { headers: { 'x-eppkit-endpoint': '' } }, 'endpoint_invalid', 500],
  ['answer of the wrong phase', { path: '/wrong-phase' }, 'epp_protocol_error', 500],
  ['answer with an empty oneof', { path: '/empty-oneof' }, 'epp_protocol_error', 500],
];

describe.each(['buffered', 'streamed', 'none'] as const)('node-proxy EPP failures, body mode %s', (bodyMode) => {
  it.each(EPP_FAILURES)('%s: fail-close answers the status of Envoy’s table', async (_n, req, reason, status) => {
    await using p = await proxy('close', { bodyMode });
    const r = await send(p.url, { path: req.path ?? '/', headers: req.headers ?? {}, body: 'payload' });
    expect(r.status).toBe(status);
    expect(r.headers['x-eppkit-reason']).toBe(reason);
    expect(count(p, 'epp_failure', reason)).toBe(1);
    // ...and keeps serving.
    const ok = await send(p.url, { body: 'again' });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-inference-port']).toBe(String(picked.port));
    await nothingOpen(p);
  });

  it.each(EPP_FAILURES)('%s: fail-open sends the request, body intact, to a fallback endpoint', async (_n, req, reason) => {
    await using p = await proxy('open', { bodyMode });
    const r = await send(p.url, { path: `/__echo-body${req.path ?? ''}`, headers: req.headers ?? {}, body: 'payload-bytes' });
    // The fallback backend answers; the body arrived whole.
    expect(r.status).toBe(200);
    expect(r.headers['x-inference-port']).toBe(String(fallback.port));
    expect(r.text()).toBe('payload-bytes');
    expect(count(p, 'fallback', reason)).toBe(1);
    await nothingOpen(p);
  });
});

describe('node-proxy EPP unreachable or gone', () => {
  async function closedPort(): Promise<string> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return `127.0.0.1:${port}`;
  }

  it('fail-close: 500 epp_unavailable', async () => {
    await using p = await proxy('close', { eppAddress: await closedPort() });
    const r = await send(p.url, { body: 'x' });
    expect(r.status).toBe(500);
    expect(r.headers['x-eppkit-reason']).toBe('epp_unavailable');
    await nothingOpen(p);
  });

  it('fail-close answers at once, without waiting for the rest of a buffered body', async () => {
    await using p = await proxy('close', { eppAddress: await closedPort(), bodyMode: 'buffered' });
    const u = new URL(p.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const c = net.connect(Number(u.port), u.hostname, () => c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789'));
      let got = '';
      c.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) {
          c.destroy();
          resolve(got);
        }
      });
      c.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 500 /);
    expect(answer).toMatch(/x-eppkit-reason: epp_unavailable/);
    await nothingOpen(p);
  });

  it('fail-open: the fallback serves', async () => {
    await using p = await proxy('open', { eppAddress: await closedPort() });
    for (let i = 0; i < 3; i++) {
      const r = await send(p.url, { body: 'x' });
      expect(r.status).toBe(200);
      expect(r.headers['x-inference-port']).toBe(String(fallback.port));
    }
    await nothingOpen(p);
  });

  it('fail-open without fallback endpoints: 503 no_fallback', async () => {
    await using p = await proxy('open', { eppAddress: await closedPort(), fallbackEndpoints: [] });
    const r = await send(p.url);
    expect(r.status).toBe(503);
    expect(r.headers['x-eppkit-reason']).toBe('no_fallback');
  });

  it('fail-open tries the fallback endpoints in order when one refuses', async () => {
    await using p = await proxy('open', { eppAddress: await closedPort(), fallbackEndpoints: ['127.0.0.1:1', fallback.address] });
    for (let i = 0; i < 4; i++) expect((await send(p.url)).headers['x-inference-port']).toBe(String(fallback.port));
  });

  it.each(['close', 'open'] as const)('an EPP that dies mid-stream: %s mode has a defined answer, the proxy keeps serving', async (mode) => {
    await using dying = await new MockEpp({ endpoints: [picked.address] }).withPort(0).withAdminPort(null).start();
    await using p = await proxy(mode, { eppAddress: dying.address, timeoutMs: 10_000 });
    const pending = send(p.url, { headers: { 'x-eppkit-hang': 'true' }, body: 'x' });
    await dying.waitForJournal(0, 1000);
    await eventually(() => dying.journal.length === 1, 'stream open at the EPP');
    await dying.stop();
    const r = await pending;
    if (mode === 'close') {
      expect(r.status).toBe(500);
      expect(['epp_grpc_error', 'epp_unavailable', 'epp_closed']).toContain(r.headers['x-eppkit-reason']);
    } else expect(r.headers['x-inference-port']).toBe(String(fallback.port));
    const next = await send(p.url);
    expect(next.status).toBe(mode === 'close' ? 500 : 200);
    await nothingOpen(p);
  });
});

describe('node-proxy immediate responses', () => {
  it.each(['buffered', 'streamed', 'none'] as const)('%s: relays status, headers and body', async (bodyMode) => {
    await using p = await proxy('close', { bodyMode });
    const r = await send(p.url, { path: '/imm-full', body: 'ignored' });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('3');
    expect(r.headers['x-shed']).toBe('yes');
    expect(r.text()).toBe('slow down');
    expect(count(p, 'immediate', 'immediate_response')).toBe(1);
    expect(picked.received.some((x) => x.url === '/imm-full')).toBe(false);
    // The keep-alive connection stays usable after an answer that skipped the body.
    expect((await send(p.url, { body: 'next' })).status).toBe(200);
    await nothingOpen(p);
  });

  it('a status below 200 becomes 200, as in Envoy', async () => {
    await using p = await proxy('close');
    expect((await send(p.url, { headers: { 'x-eppkit-immediate': '0' } })).status).toBe(200);
    expect((await send(p.url, { headers: { 'x-eppkit-immediate': '503' } })).status).toBe(503);
  });

  it('fail-open does not override an immediate response', async () => {
    await using p = await proxy('open');
    expect((await send(p.url, { headers: { 'x-eppkit-immediate': '503' } })).status).toBe(503);
  });
});

describe('node-proxy response-phase failures', () => {
  it('fail-close: a gRPC error on the response-headers phase answers 500', async () => {
    await using p = await proxy('close', { responseProcessing: true });
    const r = await send(p.url, { headers: { 'x-eppkit-phase': 'response_headers', 'x-eppkit-grpc-error': 'INTERNAL' } });
    expect(r.status).toBe(500);
    await nothingOpen(p);
  });

  it('fail-open: the upstream response passes through', async () => {
    await using p = await proxy('open', { responseProcessing: true });
    const r = await send(p.url, { headers: { 'x-eppkit-phase': 'response_headers', 'x-eppkit-hang': 'true' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-inference-port']).toBe(String(picked.port));
    await nothingOpen(p);
  });

  it('an EPP that ends its stream with OK after picking is ignored for the response phase (Envoy)', async () => {
    await using s = await startScriptedEpp((call, msg) => {
      if (msg.request !== 'request_headers') return;
      call.write({ request_headers: { response: { header_mutation: { set_headers: [setHeaderOption('x-gateway-destination-endpoint', picked.address)] } } } });
      call.end();
    });
    await using p = await proxy('close', { eppAddress: s.address, bodyMode: 'none', responseProcessing: true });
    const r = await send(p.url);
    expect(r.status).toBe(200);
    expect(r.headers['x-inference-port']).toBe(String(picked.port));
    await nothingOpen(p);
  });

  it('an immediate response on the response phase replaces the upstream response', async () => {
    await using p = await proxy('close', { responseProcessing: true });
    const r = await send(p.url, { headers: { 'x-eppkit-phase': 'response_headers', 'x-eppkit-immediate': '418' } });
    expect(r.status).toBe(418);
    await nothingOpen(p);
  });
});

describe('node-proxy endpoint missing (scripted EPP)', () => {
  it.each([
    ['close', 500],
    ['open', 200],
  ] as const)('%s mode', async (mode, status) => {
    await using s = await startScriptedEpp((call, msg) => {
      if (msg.request === 'request_headers') call.write({ request_headers: { response: {} } });
    });
    await using p = await proxy(mode, { eppAddress: s.address, bodyMode: 'none' });
    const r = await send(p.url);
    expect(r.status).toBe(status);
    if (mode === 'close') expect(r.headers['x-eppkit-reason']).toBe('endpoint_missing');
    else expect(r.headers['x-inference-port']).toBe(String(fallback.port));
  });
});

describe('node-proxy upstream failures', () => {
  it('an upstream that resets before answering: 502 upstream_reset', async () => {
    await using p = await proxy('close');
    const r = await send(p.url, { path: '/__reset' });
    expect(r.status).toBe(502);
    expect(r.headers['x-eppkit-reason']).toBe('upstream_reset');
    expect((await send(p.url)).status).toBe(200);
    await nothingOpen(p);
  });

  it('an upstream slower than upstreamTimeoutMs: 504 upstream_timeout, the upstream request is cut', async () => {
    await using p = await proxy('close', { upstreamTimeoutMs: 200 });
    const cut = picked.cutOff();
    const r = await send(p.url, { path: '/__slow?ms=5000' });
    expect(r.status).toBe(504);
    expect(r.headers['x-eppkit-reason']).toBe('upstream_timeout');
    await eventually(() => picked.cutOff() === cut + 1, 'backend saw the request cut off');
    expect((await send(p.url, { path: '/__slow?ms=10' })).status).toBe(200);
    await nothingOpen(p);
  });

  it('an upstream that resets mid-response: the client connection is cut, the proxy keeps serving', async () => {
    await using p = await proxy('close');
    await expect(send(p.url, { path: '/__reset-mid' })).rejects.toThrow();
    await eventually(() => count(p, 'upstream_failure', 'upstream_reset') === 1, 'reset counted');
    expect((await send(p.url)).status).toBe(200);
    await nothingOpen(p);
  });
});

describe('node-proxy malformed and oversized requests', () => {
  function raw(url: string, text: string): Promise<string> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(u.port), u.hostname, () => s.write(text));
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('end', () => resolve(out));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
  }

  it('answers 400 to a malformed request line and keeps serving', async () => {
    await using p = await proxy('close');
    expect(await raw(p.url, 'GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(p.url, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(count(p, 'rejected', 'bad_request')).toBe(2);
    expect((await send(p.url)).status).toBe(200);
  });

  it('answers 431 to oversized headers', async () => {
    await using p = await proxy('close', { maxHeaderBytes: 4096 });
    const r = await raw(p.url, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
    expect(r).toMatch(/^HTTP\/1\.1 431 /);
    expect(count(p, 'rejected', 'headers_too_large')).toBe(1);
    expect((await send(p.url)).status).toBe(200);
  });
});
