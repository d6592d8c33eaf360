// The native nginx EPP module (proxies/nginx-epp) in both config forms: real Debian nginx with
// the real .so, the real MockEpp over gRPC, real echo backends. Proves that routing follows the
// EPP's pick (first valid entry of a list), query args survive, other header mutations reach
// the backend, a client's own copy of the endpoint header cannot steer routing,
// ImmediateResponses are relayed whole, and $epp_status is logged.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { NginxDriver, type StartedNginx } from '../../harness/data-planes/nginx-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const gate = await gateFor(new NginxDriver());

const RULES = [
  {
    match: { headers: { 'x-case': 'immediate' } },
    action: { immediate: { status: 503, headers: { 'x-epp-reason': 'no-capacity', 'content-type': 'text/plain' }, body: 'no endpoint ready' } },
  },
  { match: { headers: { 'x-case': 'mutate' } }, action: { setHeaders: { 'x-epp-added': 'yes', 'x-replace-me': 'new' }, removeHeaders: ['x-remove-me'] } },
];

describe.skipIf(gate.skip)('nginx-epp routing', () => {
  it('nginx and the built module are available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let a: StartedEchoBackend;
  let b: StartedEchoBackend;
  let epp: StartedMockEpp;
  const planes: Record<string, StartedNginx> = {};

  beforeAll(async () => {
    [a, b] = (await startBackends('a', 'b')) as [StartedEchoBackend, StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [a.address, b.address], rules: RULES }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    for (const form of ['ngf', 'direct'] as const) {
      planes[form] = await new NginxDriver({ form }).start(routeWithDefaults({ eppAddress: epp.address, timeoutMs: 1000 }), {
        workDir: workDir(`nginx-epp-${form}`),
        runtime: 'local',
        host: '127.0.0.1',
      });
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(planes).map((p) => p.stop()));
    await epp?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  describe.each(['ngf', 'direct'] as const)('%s form', (form) => {
    const url = (path = '/v1/completions'): string => `${planes[form]!.url}${path}`;

    it('sends each request to the endpoint the EPP picked, keeping path and query', async () => {
      for (const target of [b, a, b]) {
        const r = await send(url('/v1/chat/completions?stream=false&n=2'), { headers: { 'test-epp-endpoint-selection': target.address } });
        expect(r.status, planes[form]!.logs().slice(-3000)).toBe(200);
        expect(r.pod).toBe(target.name);
        const echoed = JSON.parse(r.text) as { request: { path: string; rawQuery: string } };
        expect(`${echoed.request.path}?${echoed.request.rawQuery}`).toBe('/v1/chat/completions?stream=false&n=2');
      }
      epp.clearJournal();
      await send(url('/v1/x?q=1'), { method: 'POST', body: '{"model":"m"}', headers: { 'Content-Type': 'application/json', 'X-Mixed-Case': 'V' } });
      const [entry] = await epp.waitForJournal(1, 5000);
      expect(entry?.requestHeaders?.[':path']).toBe('/v1/x?q=1');
      expect(entry?.requestHeaders?.[':method']).toBe('POST');
      expect(entry?.requestHeaders?.[':scheme']).toBe('http');
      expect(entry?.requestHeaders?.[':authority']).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(entry?.requestHeaders?.['x-mixed-case']).toBe('V');
      expect(entry?.protocolConfig?.requestBodyMode).toBe('BUFFERED');
      // The module lets the EPP end the stream instead of resetting it (rapid-reset protections).
      expect(entry?.end?.how).toBe('completed');
    });

    it('keeps its backend connections alive: ten requests to one pick open at most one new connection', async () => {
      const before = b.acceptedConnections();
      for (let i = 0; i < 10; i++) {
        const r = await send(url(), { headers: { 'x-eppkit-endpoint': b.address } });
        expect(r.pod).toBe('b');
      }
      // Without `keepalive` in the upstream nginx opens (and closes) one connection per request.
      expect(b.acceptedConnections() - before).toBeLessThanOrEqual(1);
    });

    it('uses the first valid entry of a comma list and refuses a list without one', async () => {
      let r = await send(url(), { headers: { 'x-eppkit-endpoint': `${a.address},${b.address}` } });
      expect(r.pod).toBe('a');
      r = await send(url(), { headers: { 'x-eppkit-endpoint': `not-an-endpoint,${b.address}` } });
      expect(r.pod).toBe('b');
      r = await send(url(), { headers: { 'x-eppkit-endpoint': 'example.com:80,10.0.0.1' } });
      expect(r.status).toBe(500);
      expect(r.pod).toBeUndefined();
    });

    it("applies the EPP's other header mutations and replaces a client's endpoint header", async () => {
      const r = await send(url(), {
        headers: {
          'x-case': 'mutate',
          'x-replace-me': 'old',
          'x-remove-me': 'x',
          'test-epp-endpoint-selection': a.address,
          'x-gateway-destination-endpoint': b.address,
        },
      });
      expect(r.status).toBe(200);
      expect(r.pod).toBe('a');
      expect(r.receivedHeaders?.['x-epp-added']).toBe('yes');
      expect(r.receivedHeaders?.['x-replace-me']).toBe('new');
      expect(r.receivedHeaders?.['x-remove-me']).toBeUndefined();
      expect(r.receivedHeaders?.['x-gateway-destination-endpoint']).toBe(a.address);
    });

    it('refuses picks outside epp_allow and sends the subset hint', async () => {
      await using plane = await new NginxDriver({ form }).start(
        routeWithDefaults({ eppAddress: epp.address, timeoutMs: 1000, allow: [a.address], subsetHint: [a.address, b.address] }),
        { workDir: workDir(`nginx-epp-allow-${form}`), runtime: 'local', host: '127.0.0.1' },
      );
      epp.clearJournal();
      expect((await send(`${plane.url}/v1/completions`, { headers: { 'x-eppkit-endpoint': a.address } })).pod).toBe('a');
      const [entry] = await epp.waitForJournal(1, 5000);
      expect(entry?.subsetHint).toEqual([a.address, b.address]);
      const refused = await send(`${plane.url}/v1/completions`, { headers: { 'x-eppkit-endpoint': b.address } });
      expect(refused.status).toBe(500);
      expect(refused.pod).toBeUndefined();
      // The first allowed entry of the EPP's list is used.
      expect((await send(`${plane.url}/v1/completions`, { headers: { 'x-eppkit-endpoint': `${b.address},${a.address}` } })).pod).toBe('a');
    });

    it('relays an ImmediateResponse: status, headers and body', async () => {
      const r = await send(url(), { headers: { 'x-case': 'immediate' } });
      expect(r.status).toBe(503);
      expect(r.headers['x-epp-reason']).toBe('no-capacity');
      expect(r.headers['content-type']).toBe('text/plain');
      expect(r.text).toBe('no endpoint ready');
      expect(r.pod).toBeUndefined();
      const r2 = await send(url(), { headers: { 'x-eppkit-immediate': '429' } });
      expect(r2.status).toBe(429);
    });

    it('logs $epp_status and the endpoint in the access log', async () => {
      await send(url('/logged'), { headers: { 'test-epp-endpoint-selection': b.address } });
      await send(url('/logged-immediate'), { headers: { 'x-eppkit-immediate': '429' } });
      // nginx writes the line after the response: wait for it.
      let log = '';
      for (let i = 0; i < 150 && !log.includes('/logged-immediate'); i++) {
        log = readFileSync(join(planes[form]!.workDir, 'access.log'), 'utf8');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(log).toMatch(new RegExp(`"GET /logged HTTP/1.1" 200 \\d+ epp=ok endpoint="${b.address.replace(/\./g, '\\.')}"`));
      expect(log).toMatch(/"GET \/logged-immediate HTTP\/1.1" 429 \d+ epp=immediate/);
    });
  });
});
