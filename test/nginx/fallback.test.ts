// The EPP's fallback list through the native nginx module's `epp_balancer` upstream, both config
// forms, against the real MockEpp and real echo backends: a first entry that refuses connections
// is skipped for the next one (in the EPP's order), a list of dead entries answers 502, and a
// fail-open request without a pick goes round-robin to the upstream's own servers (the pool).
// Without the balancer (`proxy_pass http://$inference_workload_endpoint`) only the first entry
// is ever tried: that behaviour is unchanged.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { NginxDriver, type StartedNginx } from '../../harness/data-planes/nginx-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const gate = await gateFor(new NginxDriver());
const FORMS = ['ngf', 'direct'] as const;

/** A loopback address nothing listens on (bound, then closed). */
async function deadAddress(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(`127.0.0.1:${port}`));
    });
  });
}

/** The access log's last line once it contains `want` (nginx logs after the response is sent). */
async function lastLogLine(plane: StartedNginx, want: string): Promise<string> {
  const deadline = Date.now() + 3000;
  let last = '';
  while (Date.now() < deadline) {
    last = readFileSync(join(plane.workDir, 'access.log'), 'utf8').trim().split('\n').at(-1) ?? '';
    if (last.includes(want)) return last;
    await new Promise((r) => setTimeout(r, 20));
  }
  return last;
}

describe.skipIf(gate.skip)('nginx-epp fallback list (epp_balancer)', () => {
  it('nginx and the built module are available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let b: StartedEchoBackend;
  let c: StartedEchoBackend;
  let pool: StartedEchoBackend;
  let dead1: string;
  let dead2: string;
  let epp: StartedMockEpp;
  const planes = new Map<string, StartedNginx>();

  beforeAll(async () => {
    [b, c, pool] = (await startBackends('b', 'c', 'pool')) as [StartedEchoBackend, StartedEchoBackend, StartedEchoBackend];
    dead1 = await deadAddress();
    dead2 = await deadAddress();
    epp = await new MockEpp({ endpoints: [b.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    for (const form of FORMS) {
      for (const balancer of [true, false]) {
        planes.set(
          `${form}-${balancer}`,
          await new NginxDriver({ form, balancer }).start(
            routeWithDefaults({ eppAddress: epp.address, failureMode: 'open', timeoutMs: 1000, fallbackEndpoints: [pool.address] }),
            { workDir: workDir(`nginx-epp-fallback-${form}-${balancer ? 'balancer' : 'plain'}`), runtime: 'local', host: '127.0.0.1' },
          ),
        );
      }
    }
  });
  afterAll(async () => {
    await Promise.all([...planes.values()].map((p) => p.stop()));
    await epp?.stop();
    await Promise.all([b?.stop(), c?.stop(), pool?.stop()]);
  });

  describe.each(FORMS)('%s form', (form) => {
    const plane = (balancer: boolean): StartedNginx => planes.get(`${form}-${balancer}`)!;

    it('a first entry that refuses connections: the second answers, tried in the EPP order', async () => {
      const p = plane(true);
      const r = await send(`${p.url}/v1/completions?case=skip`, { headers: { 'x-eppkit-endpoint': `${dead1},${b.address},${c.address}` }, body: '{"model":"m"}' });
      expect(r.status, p.logs().slice(-3000)).toBe(200);
      expect(r.pod).toBe('b');
      const line = await lastLogLine(p, 'case=skip');
      expect(line).toContain(`upstream="${dead1}, ${b.address}"`);
      expect(line).toContain('epp=ok');
      // $inference_workload_endpoint stays the EPP's pick (the first entry).
      expect(line).toContain(`endpoint="${dead1}"`);
    });

    it('invalid entries are skipped, two dead entries are both tried before the third', async () => {
      const p = plane(true);
      const r = await send(`${p.url}/v1/completions?case=two-dead`, {
        headers: { 'x-eppkit-endpoint': `garbage,${dead1},evil.example.com:80,${dead2},${c.address}` },
        body: '{"model":"m"}',
      });
      expect(r.status, p.logs().slice(-3000)).toBe(200);
      expect(r.pod).toBe('c');
      expect(await lastLogLine(p, 'case=two-dead')).toContain(`upstream="${dead1}, ${dead2}, ${c.address}"`);
    });

    it('the first entry is used while it is up (no needless retry)', async () => {
      const p = plane(true);
      const r = await send(`${p.url}/v1/completions?case=first`, { headers: { 'x-eppkit-endpoint': `${c.address},${b.address}` }, body: '{"model":"m"}' });
      expect(r.status).toBe(200);
      expect(r.pod).toBe('c');
      expect(await lastLogLine(p, 'case=first')).toContain(`upstream="${c.address}"`);
    });

    it('every entry dead: 502 after trying each one, never the pool', async () => {
      const p = plane(true);
      const r = await send(`${p.url}/v1/completions?case=all-dead`, { headers: { 'x-eppkit-endpoint': `${dead1},${dead2}` }, body: '{"model":"m"}' });
      expect(r.status).toBe(502);
      expect(r.pod).toBeUndefined();
      expect(await lastLogLine(p, 'case=all-dead')).toContain(`upstream="${dead1}, ${dead2}"`);
    });

    it('fail-open with no pick: the upstream round-robins its own servers (the pool)', async () => {
      const p = plane(true);
      const r = await send(`${p.url}/v1/completions?case=fail-open`, { headers: { 'x-eppkit-grpc-error': 'UNAVAILABLE' }, body: '{"model":"m"}' });
      expect(r.status, p.logs().slice(-3000)).toBe(200);
      expect(r.pod).toBe('pool');
      const line = await lastLogLine(p, 'case=fail-open');
      expect(line).toContain('epp=fail_open');
      expect(line).toContain(`upstream="${pool.address}"`);
    });

    it('without epp_balancer only the first entry is tried (unchanged behaviour)', async () => {
      const p = plane(false);
      const r = await send(`${p.url}/v1/completions?case=plain`, { headers: { 'x-eppkit-endpoint': `${dead1},${b.address}` }, body: '{"model":"m"}' });
      expect(r.status).toBe(502);
      expect(r.pod).toBeUndefined();
      const ok = await send(`${p.url}/v1/completions?case=plain-ok`, { headers: { 'x-eppkit-endpoint': `${b.address},${c.address}` }, body: '{"model":"m"}' });
      expect(ok.status).toBe(200);
      expect(ok.pod).toBe('b');
    });
  });
});
