// Failure handling of the native nginx EPP module, both config forms, against the real MockEpp:
// with `epp_failure_mode_allow off` every failure answers 500, a timeout 504 (as Envoy does);
// with `on` the request goes to the pool (NGF's map, or epp_default_upstream in the direct
// form) and $epp_status says fail_open. Also: an EPP that is down, and clients that go away
// while the EPP call is in flight (the call is cancelled, the worker survives and keeps serving).
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type FailureMode } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { NginxDriver, type StartedNginx } from '../../harness/data-planes/nginx-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';
import { eventually } from '../support/eventually.ts';

const gate = await gateFor(new NginxDriver());
const FORMS = ['ngf', 'direct'] as const;

const RULES = [
  { match: { headers: { 'x-case': 'close' } }, action: { close: true } },
  { match: { headers: { 'x-case': 'wrong-phase' } }, action: { malformed: 'wrong-phase' } },
  { match: { headers: { 'x-case': 'empty-oneof' } }, action: { malformed: 'empty-oneof' } },
];

// [headers, fail-close status, $epp_status on fail-close]
const CASES: Array<[Record<string, string>, number, string]> = [
  [{ 'x-eppkit-grpc-error': 'INTERNAL' }, 500, 'error'],
  [{ 'x-eppkit-grpc-error': 'UNAVAILABLE' }, 500, 'unavailable'],
  [{ 'x-eppkit-reset': 'true' }, 500, 'error'],
  [{ 'x-eppkit-delay-ms': '3000' }, 504, 'timeout'],
  [{ 'x-eppkit-hang': 'true' }, 504, 'timeout'],
  [{ 'x-case': 'close' }, 500, 'error'],
  [{ 'x-case': 'wrong-phase' }, 500, 'error'],
  [{ 'x-case': 'empty-oneof' }, 500, 'error'],
  [{ 'x-eppkit-endpoint': 'not-an-endpoint' }, 500, 'invalid'],
  [{ 'x-eppkit-endpoint': 'evil.example.com:80' }, 500, 'invalid'],
];

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

function pid(plane: StartedNginx): number[] {
  // Worker pids, from the error log's "start worker process N" lines.
  const log = readFileSync(join(plane.workDir, 'error.log'), 'utf8');
  return [...log.matchAll(/start worker process (\d+)/g)].map((m) => Number(m[1]));
}

describe.skipIf(gate.skip)('nginx-epp failure modes', () => {
  it('nginx and the built module are available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let a: StartedEchoBackend;
  let fallback: StartedEchoBackend;
  let epp: StartedMockEpp;
  const planes = new Map<string, StartedNginx>();

  beforeAll(async () => {
    [a, fallback] = (await startBackends('a', 'fallback')) as [StartedEchoBackend, StartedEchoBackend];
    epp = await new MockEpp({ endpoints: [a.address], rules: RULES }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    for (const form of FORMS) {
      for (const failureMode of ['close', 'open'] as FailureMode[]) {
        planes.set(
          `${form}-${failureMode}`,
          await new NginxDriver({ form }).start(routeWithDefaults({ eppAddress: epp.address, failureMode, timeoutMs: 1000, fallbackEndpoints: [fallback.address] }), {
            workDir: workDir(`nginx-epp-${form}-${failureMode}`),
            runtime: 'local',
            host: '127.0.0.1',
          }),
        );
      }
    }
  });
  afterAll(async () => {
    await Promise.all([...planes.values()].map((p) => p.stop()));
    await epp?.stop();
    await Promise.all([a?.stop(), fallback?.stop()]);
  });

  describe.each(FORMS)('%s form', (form) => {
    const plane = (fm: FailureMode): StartedNginx => planes.get(`${form}-${fm}`)!;

    it('fail-close: 500 for every failure, 504 for a timeout; fail-open: the pool', async () => {
      for (const [headers, status, eppStatus] of CASES) {
        const what = `${form} ${JSON.stringify(headers)}`;
        const closed = await send(`${plane('close').url}/v1/completions`, { headers: { ...headers, 'x-case-id': what }, body: '{"model":"m"}' });
        expect(closed.status, what).toBe(status);
        expect(closed.pod, what).toBeUndefined();
        const open = await send(`${plane('open').url}/v1/completions`, { headers, body: '{"model":"m"}' });
        expect(open.status, `${what}\n${plane('open').logs().slice(-3000)}`).toBe(200);
        expect(open.pod, what).toBe('fallback');
        // The client's copy of the endpoint header never reaches the backend on fail-open.
        expect(open.receivedHeaders?.['x-gateway-destination-endpoint'], what).toBeUndefined();
        expect(await lastLogLine(plane('close'), `epp=${eppStatus}`), what).toContain(`epp=${eppStatus}`);
        expect(await lastLogLine(plane('open'), 'epp=fail_open'), what).toContain('epp=fail_open');
      }
    });

    it('clients that disconnect while the EPP call is in flight: the call is cancelled, the worker keeps serving', async () => {
      const p = plane('close');
      const workersBefore = pid(p);
      epp.clearJournal();
      const N = 40;
      const { port } = new URL(p.url);
      // Raw sockets: the whole request is written at once, then dropped once every EPP stream
      // has opened, so each abort lands while its EPP call is in flight.
      const sockets = Array.from({ length: N }, () => {
        const s = connect({ host: '127.0.0.1', port: Number(port) });
        s.on('error', () => undefined);
        s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nx-eppkit-delay-ms: 900\r\n\r\n{"model":"m"}');
        return s;
      });
      const deadline = Date.now() + 5000;
      while (epp.journal.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      for (const s of sockets) s.destroy();
      const entries = await epp.waitForJournal(N, 10_000);
      // Each stream ended; the ones nginx cancelled show as client-cancelled (the last may still be filed).
      const cancelledNow = (): number => epp.journal.filter((e) => e.end?.how === 'client-cancelled').length;
      await eventually(() => cancelledNow() >= N / 2, `${N / 2} of ${N} streams journaled as client-cancelled`).catch(() => undefined);
      const cancelled = cancelledNow();
      expect(entries.length).toBeGreaterThanOrEqual(N);
      expect(cancelled, JSON.stringify(epp.journal.map((e) => e.end))).toBeGreaterThanOrEqual(N / 2);
      const r = await send(`${p.url}/v1/completions`, { body: '{"model":"m"}' });
      expect(r.status).toBe(200);
      expect(r.pod).toBe('a');
      expect(pid(p)).toEqual(workersBefore);
      const errorLog = readFileSync(join(p.workDir, 'error.log'), 'utf8');
      expect(errorLog).not.toMatch(/\[alert\]|\[emerg\]|signal 11|exited on signal/);
    });
  });

  it('a reload (SIGHUP) while EPP calls are in flight: the old worker finishes them', async () => {
    await using plane = await new NginxDriver().start(routeWithDefaults({ eppAddress: epp.address, timeoutMs: 3000 }), {
      workDir: workDir('nginx-epp-reload'),
      runtime: 'local',
      host: '127.0.0.1',
    });
    const openBefore = epp.openStreams;
    const inFlight = Array.from({ length: 5 }, () => send(`${plane.url}/v1/completions`, { headers: { 'x-eppkit-delay-ms': '1000' }, timeoutMs: 10_000 }));
    // The reload must land while all five EPP calls are open (each holds its pick for 1 s).
    await eventually(() => epp.openStreams - openBefore >= 5, 'all 5 EPP calls open at the EPP before the reload');
    expect(epp.openStreams - openBefore).toBe(5);
    process.kill(plane.pid!, 'SIGHUP');
    for (const r of await Promise.all(inFlight)) {
      expect(r.status).toBe(200);
      expect(r.pod).toBe('a');
    }
  });

  it('EPP down: fail-close 500 ($epp_status unavailable), fail-open the pool', async () => {
    const gone = await new MockEpp({ endpoints: [a.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    const eppAddress = gone.address;
    await gone.stop();
    for (const form of FORMS) {
      for (const failureMode of ['close', 'open'] as FailureMode[]) {
        await using plane = await new NginxDriver({ form }).start(routeWithDefaults({ eppAddress, failureMode, fallbackEndpoints: [fallback.address] }), {
          workDir: workDir('nginx-epp-down'),
          runtime: 'local',
          host: '127.0.0.1',
        });
        const r = await send(`${plane.url}/v1/completions`, { body: 'hi' });
        if (failureMode === 'close') {
          expect(r.status).toBe(500);
          expect(await lastLogLine(plane, 'epp=unavailable')).toContain('epp=unavailable');
        } else expect(r.pod).toBe('fallback');
      }
    }
  });
});
