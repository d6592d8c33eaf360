// The envoy and nginx-njs data planes with --runtime docker: the same rendered configs run in
// the eppkit/envoy, eppkit/nginx-njs and eppkit/node images on the host network, against the
// real MockEpp and an echo backend on the host's loopback. Needs `eppkit build images`
// (skipped locally with the reason when the images are missing; a failure under CI=true).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type FailureMode } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import type { DataPlaneDriver } from '../../harness/data-planes/data-plane-driver.ts';
import { EnvoyDriver } from '../../harness/data-planes/envoy-driver.ts';
import { NginxNjsDriver } from '../../harness/data-planes/nginx-njs-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const drivers: DataPlaneDriver[] = [new EnvoyDriver(), new NginxNjsDriver()];
const gates = await Promise.all(drivers.map((d) => gateFor(d, 'docker')));

for (const [i, driver] of drivers.entries()) {
  const gate = gates[i]!;
  describe.skipIf(gate.skip)(`${driver.name} in docker`, () => {
    it('its images are built (CI=true demands them)', () => {
      expect(gate.availability).toEqual({ ok: true });
    });

    let pod: StartedEchoBackend;
    let fallback: StartedEchoBackend;
    let epp: StartedMockEpp;
    beforeAll(async () => {
      [pod, fallback] = (await startBackends('pod', 'fallback')) as [StartedEchoBackend, StartedEchoBackend];
      epp = await new MockEpp({ endpoints: [pod.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    });
    afterAll(async () => {
      await epp?.stop();
      await Promise.all([pod?.stop(), fallback?.stop()]);
    });

    for (const failureMode of ['close', 'open'] as FailureMode[]) {
      it(`routes to the pick and applies ${failureMode === 'close' ? 'FailClose (500)' : 'FailOpen (the pool)'} on a gRPC error`, async () => {
        await using plane = await driver.start(
          routeWithDefaults({ eppAddress: epp.address, failureMode, timeoutMs: 2000, fallbackEndpoints: [fallback.address] }),
          { workDir: workDir(`${driver.name}-docker`), runtime: 'docker', host: '127.0.0.1' },
        );
        const ok = await send(`${plane.url}/v1/completions`, { body: 'hello' });
        expect(ok.status, plane.logs().slice(-2000)).toBe(200);
        expect(ok.pod).toBe('pod');
        const failed = await send(`${plane.url}/v1/completions`, { body: 'hello', headers: { 'x-eppkit-grpc-error': 'INTERNAL' } });
        if (failureMode === 'close') expect(failed.status).toBe(500);
        else expect(failed.pod).toBe('fallback');
      }, 120_000);
    }
  });
}
