// Real Envoy and the MockEpp exchanging metadata: the subset hint Envoy sends
// (envoy.lb.subset_hint), the served endpoint it reports on the response-headers phase
// (envoy.lb x-gateway-destination-endpoint-served), and the EPP's envoy.lb dynamic_metadata
// that Envoy accepts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type BodyMode } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { EnvoyDriver } from '../../harness/data-planes/envoy-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const driver = new EnvoyDriver();
const gate = await gateFor(driver);

describe.skipIf(gate.skip)('envoy: metadata to and from the EPP', () => {
  let a: StartedEchoBackend;
  let b: StartedEchoBackend;
  let c: StartedEchoBackend;
  let epp: StartedMockEpp;
  beforeAll(async () => {
    [a, b, c] = (await startBackends('a', 'b', 'c')) as [StartedEchoBackend, StartedEchoBackend, StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [a.address, b.address, c.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
  });
  afterAll(async () => {
    await epp?.stop();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  for (const bodyMode of ['none', 'buffered', 'streamed'] as BodyMode[]) {
    it(`${bodyMode}: reports the endpoint that served on the response-headers phase, and none when no upstream answered`, async () => {
      await using envoy = await driver.start(routeWithDefaults({ eppAddress: epp.address, bodyMode, responseProcessing: true, timeoutMs: 2000 }), {
        workDir: workDir('envoy-served'),
        runtime: 'local',
        host: '127.0.0.1',
      });
      epp.clearJournal();
      // Body mode none: no body, since Envoy would announce one the real EPPs (the default
      // profile) wait for forever (docs/ext-proc-behaviour.md §7).
      const r = await send(`${envoy.url}/v1/completions`, { ...(bodyMode === 'none' ? {} : { body: 'hi' }), headers: { 'test-epp-endpoint-selection': b.address } });
      expect(r.pod).toBe('b');
      const [entry] = await epp.waitForJournal(1, 5000);
      const why = `${JSON.stringify(entry)}\n${envoy.logs().slice(-1500)}`;
      expect(entry?.phases.map((p) => p.phase), why).toContain('response_headers');
      expect(entry?.servedEndpoint, why).toBe(b.address);

      epp.clearJournal();
      const refused = await send(`${envoy.url}/v1/completions`, { headers: { 'x-eppkit-endpoint': '127.0.0.1:1' } });
      expect(refused.status).toBe(503);
      const [failed] = await epp.waitForJournal(1, 5000);
      expect(failed?.servedEndpoint, JSON.stringify(failed)).toBeUndefined();
    });
  }

  it('sends the subset hint and the EPP picks only from it', async () => {
    await using envoy = await driver.start(routeWithDefaults({ eppAddress: epp.address, subsetHint: [b.address, c.address], timeoutMs: 2000 }), {
      workDir: workDir('envoy-subset'),
      runtime: 'local',
      host: '127.0.0.1',
    });
    epp.clearJournal();
    const pods = new Set<string>();
    for (let i = 0; i < 6; i++) pods.add((await send(`${envoy.url}/v1/completions`, { body: 'x' })).pod ?? 'none');
    expect([...pods].sort()).toEqual(['b', 'c']);
    const entries = await epp.waitForJournal(6, 5000);
    for (const e of entries) expect(e.subsetHint).toEqual([b.address, c.address]);
  });

  it("accepts the EPP's envoy.lb dynamic_metadata (visible to the access log)", async () => {
    const dir = workDir('envoy-lbmeta');
    const envoy = await driver.start(routeWithDefaults({ eppAddress: epp.address, timeoutMs: 2000 }), { workDir: dir, runtime: 'local', host: '127.0.0.1' });
    const r = await send(`${envoy.url}/v1/models`, { headers: { 'test-epp-endpoint-selection': c.address } });
    expect(r.pod).toBe('c');
    await envoy.stop();
    expect(readFileSync(join(dir, 'envoy-access.log'), 'utf8')).toContain(`lb_meta=${c.address}`);
  });
});
