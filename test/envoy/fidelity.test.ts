// Real Envoy 1.40 against the mock's strict default (the lightweight EPP's behaviour): why the
// driver renders the 'epp-compatible' processing mode, and proof that a plane waiting for the
// headers answer fails with a message that names the deadlock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvoyDriver } from '../../harness/data-planes/envoy-driver.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { runScenario } from '../../harness/runner/run-scenario.ts';
import { loadScenarios } from '../../harness/scenarios/load-scenarios.ts';
import { routeWithDefaults, type BodyMode } from '../../core/route-model.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, patternBody, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const compatible = new EnvoyDriver();
const native = new EnvoyDriver({ bodyProcessing: 'envoy-native' });
const gate = await gateFor(compatible);

describe.skipIf(gate.skip)('Envoy 1.40 and the strict (gie-lwepp) mock', () => {
  let pod: StartedEchoBackend;
  let epp: StartedMockEpp;

  beforeAll(async () => {
    [pod] = (await startBackends('pod-a')) as [StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [pod.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
  });
  afterAll(async () => {
    await epp?.stop();
    await pod?.stop();
  });

  it('envoy is available', () => expect(gate.availability).toEqual({ ok: true }));

  const start = (driver: EnvoyDriver, bodyMode: BodyMode) =>
    driver.start(routeWithDefaults({ eppAddress: epp.address, bodyMode, timeoutMs: 1500 }), { workDir: workDir(`envoy-fid-${bodyMode}`), runtime: 'local', host: '127.0.0.1' });

  for (const bodyMode of ['buffered', 'streamed'] as const) {
    it(`epp-compatible ${bodyMode}: routed, body intact (STREAMED, body sent without waiting)`, async () => {
      await using envoy = await start(compatible, bodyMode);
      const body = patternBody(300 * 1024);
      const r = await send(`${envoy.url}/v1/completions`, { body });
      expect([r.status, r.pod, r.bodyBytes]).toEqual([200, 'pod-a', body.length]);
    });
  }

  it('envoy-native BUFFERED waits for the headers answer: no answer ever comes, 504 at message_timeout, journal names the deadlock', async () => {
    await using envoy = await start(native, 'buffered');
    const before = epp.journal.length;
    const r = await send(`${envoy.url}/v1/completions`, { body: '{"model":"m"}' });
    expect(r.status).toBe(504);
    const [entry] = (await epp.waitForJournal(before + 1, 10_000)).slice(before);
    expect(entry?.answers).toEqual([]);
    expect(entry?.problems.join('\n')).toMatch(/headers-answer-deadlock: DEADLOCK/);
  });

  it('envoy-native FULL_DUPLEX_STREAMED rejects the real EPP\'s empty body answer: 500 spurious_message', async () => {
    await using envoy = await start(native, 'streamed');
    const r = await send(`${envoy.url}/v1/completions`, { body: '{"model":"m"}' });
    expect(r.status).toBe(500);
    expect(await envoy.stats()).toMatch(/spurious_msgs_received: [1-9]/);
  });

  it('a scenario on a plane that waits for the headers answer fails with a message naming the deadlock', async () => {
    const [loaded] = loadScenarios([new URL('../../scenarios/body-without-waiting.yaml', import.meta.url).pathname]);
    if (!loaded) throw new Error('scenario body-without-waiting.yaml not found');
    const failing = await runScenario({ loaded, driver: native, runtime: 'local', workDir: workDir('envoy-fid-native-run') });
    expect(failing.status).toBe('failed');
    expect(failing.reason).toMatch(/DEADLOCK: profile gie-lwepp .* waits for the request-headers answer before it sends the body/);
    const passing = await runScenario({ loaded, driver: compatible, runtime: 'local', workDir: workDir('envoy-fid-compatible-run') });
    expect([passing.status, passing.reason]).toEqual(['passed', undefined]);
  });
});
