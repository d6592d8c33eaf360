// Real Envoy reaches the MockEpp over TLS (h2 via ALPN) and verifies it: the right CA and
// name route normally; a wrong CA or a wrong server name is a failed EPP (FailClose 500).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type EppTls } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { EnvoyDriver } from '../../harness/data-planes/envoy-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { selfSignedCert, type SelfSignedCert } from '../../mock-epp/self-signed-cert.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const driver = new EnvoyDriver();
const gate = await gateFor(driver);

describe.skipIf(gate.skip)('envoy: TLS to the EPP', () => {
  let cert: SelfSignedCert;
  let otherCa: SelfSignedCert;
  let pod: StartedEchoBackend;
  let epp: StartedMockEpp;
  beforeAll(async () => {
    cert = selfSignedCert('localhost');
    otherCa = selfSignedCert('someone-else');
    [pod] = (await startBackends('pod')) as [StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [pod.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).withTls({ cert: cert.cert, key: cert.key }).start();
  });
  afterAll(async () => {
    await epp?.stop();
    await pod?.stop();
    cert?.dispose();
    otherCa?.dispose();
  });

  async function statusWith(eppTls: EppTls): Promise<{ status: number; pod?: string }> {
    await using envoy = await driver.start(routeWithDefaults({ eppAddress: epp.address, eppTls, failureMode: 'close', timeoutMs: 2000 }), {
      workDir: workDir('envoy-tls'),
      runtime: 'local',
      host: '127.0.0.1',
    });
    const r = await send(`${envoy.url}/v1/completions`, { body: 'hello' });
    return r.pod ? { status: r.status, pod: r.pod } : { status: r.status };
  }

  it('routes through a verified TLS EPP (CA file + DNS name, or CA file + the IP SAN)', async () => {
    expect(await statusWith({ caFile: cert.certFile, serverName: 'localhost' })).toEqual({ status: 200, pod: 'pod' });
    expect(await statusWith({ caFile: cert.certFile })).toEqual({ status: 200, pod: 'pod' });
    expect(await statusWith({ insecureSkipVerify: true })).toEqual({ status: 200, pod: 'pod' });
  });

  it('refuses an EPP certificate from another CA or for another name (FailClose 500)', async () => {
    expect((await statusWith({ caFile: otherCa.certFile, serverName: 'localhost' })).status).toBe(500);
    expect((await statusWith({ caFile: cert.certFile, serverName: 'not-the-epp.example' })).status).toBe(500);
  });
});
