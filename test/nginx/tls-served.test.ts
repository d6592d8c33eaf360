// TLS to the EPP and the served-endpoint report of the native nginx EPP module, against the
// real MockEpp: over TLS with the EPP's certificate as CA (verified), with verification off,
// and refused with a CA that did not sign it (a failure, so 500 on fail-close). With
// `epp_report_served on` the EPP receives, on the pick's own stream, the endpoint that
// actually answered in metadata_context envoy.lb / x-gateway-destination-endpoint-served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { NginxDriver } from '../../harness/data-planes/nginx-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { selfSignedCert, type SelfSignedCert } from '../../mock-epp/self-signed-cert.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const gate = await gateFor(new NginxDriver());

describe.skipIf(gate.skip)('nginx-epp TLS and served endpoint', () => {
  it('nginx and the built module are available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let a: StartedEchoBackend;
  let cert: SelfSignedCert;
  let other: SelfSignedCert;
  let tlsEpp: StartedMockEpp;

  beforeAll(async () => {
    [a] = (await startBackends('a')) as [StartedEchoBackend];
    cert = selfSignedCert();
    other = selfSignedCert();
    tlsEpp = await new MockEpp({ endpoints: [a.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).withTls({ cert: cert.certFile, key: cert.keyFile }).start();
  });
  afterAll(async () => {
    await tlsEpp?.stop();
    await a?.stop();
    cert?.dispose();
    other?.dispose();
  });

  it.each(['ngf', 'direct'] as const)('%s form: routes over TLS (verified with the CA, or verification off); a wrong CA is a failure', async (form) => {
    for (const [eppTls, expected] of [
      [{ caFile: cert.certFile, serverName: 'localhost' }, 200],
      [{ insecureSkipVerify: true }, 200],
      [{ caFile: other.certFile, serverName: 'localhost' }, 500],
    ] as const) {
      await using plane = await new NginxDriver({ form }).start(routeWithDefaults({ eppAddress: tlsEpp.address, eppTls, timeoutMs: 2000 }), {
        workDir: workDir(`nginx-epp-tls-${form}`),
        runtime: 'local',
        host: '127.0.0.1',
      });
      const r = await send(`${plane.url}/v1/completions`, { body: '{"model":"m"}' });
      expect(r.status, `${JSON.stringify(eppTls)}\n${plane.logs().slice(-2000)}`).toBe(expected);
      if (expected === 200) expect(r.pod).toBe('a');
    }
  });

  it.each(['ngf', 'direct'] as const)('%s form: reports the served endpoint to the EPP', async (form) => {
    await using epp = await new MockEpp({ endpoints: [a.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    await using plane = await new NginxDriver({ form }).start(routeWithDefaults({ eppAddress: epp.address, responseProcessing: true, timeoutMs: 2000 }), {
      workDir: workDir(`nginx-epp-served-${form}`),
      runtime: 'local',
      host: '127.0.0.1',
    });
    const r = await send(`${plane.url}/v1/completions`, { body: '{"model":"m"}' });
    expect(r.pod).toBe('a');
    // On the same stream as the pick, after the request phases (as Envoy does).
    const [entry] = await epp.waitForJournal(1, 5000);
    expect(entry?.servedEndpoint).toBe(a.address);
    expect(entry?.phases.map((p) => p.phase)).toEqual(['request_headers', 'request_body', 'response_headers']);
    expect(entry?.end?.how).toBe('completed');
    expect(epp.journal).toHaveLength(1);
  });
});
