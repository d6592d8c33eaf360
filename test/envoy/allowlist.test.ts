// Real Envoy with an endpoint allowlist (route.allow): a pick outside it is refused with 500
// before any connection is made, even though the EPP chose it; ip:port, bare IPs and IPv4
// CIDRs are understood.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { EnvoyDriver } from '../../harness/data-planes/envoy-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const driver = new EnvoyDriver();
const gate = await gateFor(driver);

describe.skipIf(gate.skip)('envoy: endpoint allowlist', () => {
  let a: StartedEchoBackend;
  let b: StartedEchoBackend;
  let epp: StartedMockEpp;
  beforeAll(async () => {
    [a, b] = (await startBackends('a', 'b')) as [StartedEchoBackend, StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [a.address, b.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
  });
  afterAll(async () => {
    await epp?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  async function outcomes(allow: string[]): Promise<Record<string, number | string>> {
    await using envoy = await driver.start(routeWithDefaults({ eppAddress: epp.address, allow, timeoutMs: 2000 }), { workDir: workDir('envoy-allow'), runtime: 'local', host: '127.0.0.1' });
    const out: Record<string, number | string> = {};
    for (const [name, pick] of [['a', a.address], ['b', b.address], ['garbage', 'not-an-endpoint']] as const) {
      const r = await send(`${envoy.url}/v1/completions`, { headers: { 'x-eppkit-endpoint': pick }, body: 'x' });
      out[name] = r.pod ?? r.status;
    }
    return out;
  }

  it('an ip:port entry allows exactly that endpoint', async () => {
    expect(await outcomes([a.address])).toEqual({ a: 'a', b: 500, garbage: 500 });
  });

  it('an IPv4 CIDR or a bare IP allows every port on the matching addresses', async () => {
    expect(await outcomes(['127.0.0.0/8'])).toEqual({ a: 'a', b: 'b', garbage: 500 });
    expect(await outcomes([a.ip])).toEqual({ a: 'a', b: 'b', garbage: 500 });
    expect(await outcomes(['10.0.0.0/8'])).toEqual({ a: 500, b: 500, garbage: 500 });
  });

  it('says an IPv6 CIDR it cannot check is unsupported instead of ignoring it', () => {
    expect(driver.unsupportedRoute(routeWithDefaults({ eppAddress: epp.address, allow: ['fd00::/8'] }))).toMatch(/IPv6/);
    expect(driver.unsupportedRoute(routeWithDefaults({ eppAddress: epp.address, allow: ['127.0.0.0/8', '[::1]:8000'] }))).toBeUndefined();
  });
});
