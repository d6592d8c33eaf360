// The NGINX + NJS baseline (NGINX Gateway Fabric's integration): real nginx 1.22 with
// ngx_http_js_module running proxies/nginx-njs/epp.js, the real `eppkit node-proxy --shim`
// child process, the real MockEpp over gRPC, real echo backends. Proves routing follows the
// EPP, bodies up to 8 MiB reach both the EPP and the backend, and every EPP failure becomes
// the pool (FailOpen) or a 500 (FailClose) — including ImmediateResponses and timeouts,
// which NGF cannot relay or tell apart.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type FailureMode } from '../../core/route-model.ts';
import { EchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import type { StartedDataPlane } from '../../harness/data-planes/data-plane-driver.ts';
import { NginxNjsDriver } from '../../harness/data-planes/nginx-njs-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, patternBody, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const driver = new NginxNjsDriver();
const gate = await gateFor(driver);

const RULES = [
  {
    match: { headers: { 'x-case': 'immediate' } },
    action: { immediate: { status: 503, headers: { 'x-epp-reason': 'no-capacity' }, body: 'no endpoint ready' } },
  },
  { match: { headers: { 'x-case': 'close' } }, action: { close: true } },
];

describe.skipIf(gate.skip)('nginx-njs: NGF-style endpoint picking', () => {
  it('nginx + NJS + the shim are available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let a: StartedEchoBackend;
  let b: StartedEchoBackend;
  let fallback: StartedEchoBackend;
  let epp: StartedMockEpp;
  const planes = new Map<FailureMode, StartedDataPlane>();

  beforeAll(async () => {
    [a, b, fallback] = (await startBackends('a', 'b', 'fallback')) as [StartedEchoBackend, StartedEchoBackend, StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [a.address, b.address], rules: RULES }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    const [close, open] = await Promise.all(
      (['close', 'open'] as FailureMode[]).map((failureMode) =>
        driver.start(routeWithDefaults({ eppAddress: epp.address, failureMode, timeoutMs: 500, fallbackEndpoints: [fallback.address] }), {
          workDir: workDir(`nginx-njs-${failureMode}`),
          runtime: 'local',
          host: '127.0.0.1',
        }),
      ),
    );
    planes.set('close', close!);
    planes.set('open', open!);
  });
  afterAll(async () => {
    await Promise.all([...planes.values()].map((p) => p.stop()));
    await epp?.stop();
    await Promise.all([a?.stop(), b?.stop(), fallback?.stop()]);
  });

  const url = (fm: FailureMode, path = '/v1/completions'): string => `${planes.get(fm)!.url}${path}`;

  it('sends each request to the endpoint the EPP picked', async () => {
    for (const target of [b, a, b, a]) {
      const r = await send(url('close'), { headers: { 'test-epp-endpoint-selection': target.address } });
      expect(r.status, planes.get('close')!.logs().slice(-2000)).toBe(200);
      expect(r.pod).toBe(target.name);
    }
  });

  it('follows the round-robin picker and keeps path and query', async () => {
    const pods = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await send(url('close', '/v1/chat/completions?stream=false&n=2'));
      expect(r.status).toBe(200);
      pods.add(r.pod ?? 'none');
    }
    expect([...pods].sort()).toEqual(['a', 'b']);
    epp.clearJournal();
    await send(url('close', '/v1/chat/completions?stream=false&n=2'));
    const [entry] = await epp.waitForJournal(1, 5000);
    expect(entry?.requestHeaders?.[':path']).toBe('/v1/chat/completions?stream=false&n=2');
    expect(entry?.requestHeaders?.[':method']).toBe('GET');
  });

  it('delivers an 8 MiB body whole to the EPP (one buffered body message) and to the backend', async () => {
    epp.clearJournal();
    const body = patternBody(8 * 1024 * 1024);
    const sha = createHash('sha256').update(body).digest('hex');
    // Its own data plane with a generous EPP timeout: moving 8 MiB through NJS, the shim and
    // gRPC takes longer than 500 ms on a loaded 2-core machine, and this test is about bytes.
    await using plane = await driver.start(routeWithDefaults({ eppAddress: epp.address, timeoutMs: 10_000 }), {
      workDir: workDir('nginx-njs-8mib'),
      runtime: 'local',
      host: '127.0.0.1',
    });
    const r = await send(`${plane.url}/v1/completions`, { body, headers: { 'test-epp-endpoint-selection': b.address }, timeoutMs: 30_000 });
    expect(r.status, plane.logs().slice(-3000)).toBe(200);
    expect(r.pod).toBe('b');
    expect(r.bodyBytes).toBe(body.length);
    expect(r.bodySha256).toBe(sha);
    const [entry] = await epp.waitForJournal(1, 5000);
    expect(entry?.requestBody?.size).toBe(body.length);
    expect(entry?.requestBody?.sha256).toBe(sha);
  });

  it('every EPP failure is a 500 on FailClose and the pool on FailOpen (immediate responses, errors, timeouts, hangs, closes, garbage)', async () => {
    const cases: Array<Record<string, string>> = [
      { 'x-case': 'immediate' },
      { 'x-eppkit-immediate': '429' },
      { 'x-eppkit-grpc-error': 'INTERNAL' },
      { 'x-eppkit-reset': 'true' },
      { 'x-eppkit-delay-ms': '1000' },
      { 'x-eppkit-hang': 'true' },
      { 'x-case': 'close' },
      { 'x-eppkit-endpoint': 'not-an-endpoint' },
    ];
    for (const headers of cases) {
      const closed = await send(url('close'), { headers });
      expect(closed.status, JSON.stringify(headers)).toBe(500);
      expect(closed.pod).toBeUndefined();
      // NGF cannot relay an ImmediateResponse: its headers and body never reach the client.
      expect(closed.headers['x-epp-reason']).toBeUndefined();
      const open = await send(url('open'), { headers });
      expect(open.status, JSON.stringify(headers)).toBe(200);
      expect(open.pod, JSON.stringify(headers)).toBe('fallback');
    }
  });

  it('proxies to an IPv6 pick written [::1]:port', async () => {
    const v6 = await new EchoBackend('v6').withHost('::1').start();
    try {
      const r = await send(url('close'), { headers: { 'x-eppkit-endpoint': v6.address }, body: 'six' });
      expect(r.status).toBe(200);
      expect(r.pod).toBe('v6');
      expect(r.bodyBytes).toBe(3);
    } finally {
      await v6.stop();
    }
  });

  it('EPP down: FailClose 500, FailOpen the pool', async () => {
    const gone = await new MockEpp({ endpoints: [a.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    const eppAddress = gone.address;
    await gone.stop();
    for (const failureMode of ['close', 'open'] as FailureMode[]) {
      await using plane = await driver.start(routeWithDefaults({ eppAddress, failureMode, timeoutMs: 2000, fallbackEndpoints: [fallback.address] }), {
        workDir: workDir('nginx-njs-down'),
        runtime: 'local',
        host: '127.0.0.1',
      });
      const r = await send(`${plane.url}/v1/completions`, { body: 'hi' });
      if (failureMode === 'close') expect(r.status).toBe(500);
      else expect(r.pod).toBe('fallback');
    }
  });

  it('stop() ends nginx and the shim: the port no longer answers', async () => {
    const plane = await driver.start(routeWithDefaults({ eppAddress: epp.address, timeoutMs: 2000, fallbackEndpoints: [fallback.address] }), {
      workDir: workDir('nginx-njs-stop'),
      runtime: 'local',
      host: '127.0.0.1',
    });
    expect((await send(`${plane.url}/v1/models`)).status).toBe(200);
    await plane.stop();
    await expect(send(`${plane.url}/v1/models`, { timeoutMs: 2000 })).rejects.toThrow();
  });
});
