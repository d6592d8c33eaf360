// Real Envoy 1.40 in front of the real MockEpp over gRPC, real echo backends over HTTP:
// the request goes where the EPP says, in every body mode, with its body intact, and the
// EPP sees what Envoy really sends (protocol_config, pseudo-headers, body phases).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type BodyMode } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { EnvoyDriver, type StartedEnvoy } from '../../harness/data-planes/envoy-driver.ts';
import { MockEpp } from '../../mock-epp/mock-epp.ts';
import type { StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, patternBody, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

// Envoy's own body modes (BUFFERED, FULL_DUPLEX_STREAMED) with a lenient EPP: what Envoy does.
const driver = new EnvoyDriver({ bodyProcessing: 'envoy-native' });
const gate = await gateFor(driver);

const EXPECTED_PROTOCOL_MODE: Record<BodyMode, string> = { none: 'NONE', buffered: 'BUFFERED', streamed: 'FULL_DUPLEX_STREAMED' };

describe.skipIf(gate.skip)('envoy: routing follows the EPP', () => {
  it('envoy is available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let a: StartedEchoBackend;
  let b: StartedEchoBackend;
  let epp: StartedMockEpp;
  beforeAll(async () => {
    [a, b] = (await startBackends('a', 'b')) as [StartedEchoBackend, StartedEchoBackend];
    epp = await new MockEpp({ profile: 'lenient', endpoints: [a.address, b.address], picker: 'round-robin' }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
  });
  afterAll(async () => {
    await epp?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  for (const bodyMode of ['none', 'buffered', 'streamed'] as const) {
    describe(`body mode ${bodyMode}`, () => {
      let envoy: StartedEnvoy;
      beforeAll(async () => {
        envoy = await driver.start(routeWithDefaults({ eppAddress: epp.address, bodyMode, timeoutMs: 2000 }), {
          workDir: workDir(`envoy-${bodyMode}`),
          runtime: 'local',
          host: '127.0.0.1',
        });
      });
      afterAll(async () => {
        await envoy?.stop();
      });

      it('sends each request to the endpoint the EPP picked', async () => {
        for (const target of [b, a, b, a]) {
          const r = await send(`${envoy.url}/v1/completions`, { headers: { 'test-epp-endpoint-selection': target.address } });
          expect(r.status, envoy.logs().slice(-2000)).toBe(200);
          expect(r.pod).toBe(target.name);
          // The conformance EPP's X-Echo-Set-Header reached the backend through Envoy.
          expect(r.headers['x-conformance-test-served-endpoint']).toBe(target.address);
        }
      });

      it('follows the round-robin picker across the pool', async () => {
        const pods = new Set<string>();
        for (let i = 0; i < 4; i++) pods.add((await send(`${envoy.url}/v1/models`)).pod ?? 'none');
        expect([...pods].sort()).toEqual(['a', 'b']);
      });

      it('delivers a 1 MiB body intact to the picked endpoint and shows the EPP the body only when the mode sends it', async () => {
        epp.clearJournal();
        const body = patternBody(1024 * 1024);
        const r = await send(`${envoy.url}/v1/completions`, { body, headers: { 'test-epp-endpoint-selection': b.address } });
        expect(r.status).toBe(200);
        expect(r.pod).toBe('b');
        expect(r.bodyBytes).toBe(body.length);
        expect(r.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
        const [entry] = await epp.waitForJournal(1, 5000);
        expect(entry?.protocolConfig?.requestBodyMode).toBe(EXPECTED_PROTOCOL_MODE[bodyMode]);
        if (bodyMode === 'none') {
          expect(entry?.requestBody).toBeUndefined();
        } else {
          expect(entry?.requestBody?.size).toBe(body.length);
          expect(entry?.requestBody?.sha256).toBe(r.bodySha256);
        }
      });

      it('sends lower-case headers with the pseudo-headers, and the query string in :path', async () => {
        epp.clearJournal();
        const r = await send(`${envoy.url}/v1/chat/completions?x=1&y=two`, { headers: { 'X-Mixed-Case': 'Value' } });
        expect(r.status).toBe(200);
        const [entry] = await epp.waitForJournal(1, 5000);
        const h = entry?.requestHeaders ?? {};
        expect(h[':method']).toBe('GET');
        expect(h[':path']).toBe('/v1/chat/completions?x=1&y=two');
        expect(h[':scheme']).toBe('http');
        expect(h[':authority']).toBe(new URL(envoy.url).host);
        expect(h['x-mixed-case']).toBe('Value');
        expect(Object.keys(h).every((k) => k === k.toLowerCase())).toBe(true);
      });

      it('takes the first entry of a comma-separated pick', async () => {
        const r = await send(`${envoy.url}/v1/completions`, { headers: { 'x-eppkit-endpoint': `${a.address},${b.address}` } });
        expect(r.status).toBe(200);
        expect(r.pod).toBe('a');
      });
    });
  }

  it('maxBodyBytes: BUFFERED answers 413 beyond it; NONE and FULL_DUPLEX_STREAMED pass larger bodies (the limit is only flow control there)', async () => {
    const outcome: Record<string, number> = {};
    for (const bodyMode of ['none', 'buffered', 'streamed'] as const) {
      await using envoy = await driver.start(routeWithDefaults({ eppAddress: epp.address, bodyMode, maxBodyBytes: 200 * 1024, timeoutMs: 3000 }), {
        workDir: workDir('envoy-limit'),
        runtime: 'local',
        host: '127.0.0.1',
      });
      expect((await send(`${envoy.url}/v1/completions`, { body: patternBody(100 * 1024) })).status).toBe(200);
      outcome[bodyMode] = (await send(`${envoy.url}/v1/completions`, { body: patternBody(1024 * 1024) })).status;
    }
    expect(outcome).toEqual({ none: 200, buffered: 413, streamed: 200 });
  });
});
