// Real Envoy 1.40 against the real MockEpp when the EPP misbehaves: immediate responses,
// gRPC errors, resets, per-message timeouts, hangs, an EPP that is down, a stream closed
// without a pick, garbage picks. Outcomes per the facts table (500, 504, fail-open to the
// fallback pool), plus what this Envoy really does where the table is silent or wrong
// (FULL_DUPLEX_STREAMED has no message timeout; see docs/ext-proc-behaviour.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeWithDefaults, type BodyMode, type FailureMode } from '../../core/route-model.ts';
import type { StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { EnvoyDriver, type StartedEnvoy } from '../../harness/data-planes/envoy-driver.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { gateFor, send, startBackends, workDir } from '../support/envoy-test-kit.ts';

const STREAM_IDLE_MS = 1500;
// Envoy's own body modes with a lenient EPP: what Envoy does on each failure.
const driver = new EnvoyDriver({ streamIdleTimeoutMs: STREAM_IDLE_MS, bodyProcessing: 'envoy-native' });
const gate = await gateFor(driver);

const RULES = [
  {
    match: { headers: { 'x-case': 'immediate' } },
    action: { immediate: { status: 503, headers: { 'x-epp-reason': 'no-capacity', 'retry-after': '3' }, body: 'no endpoint ready' } },
  },
  { match: { headers: { 'x-case': 'immediate-on-body' } }, action: { immediate: { status: 429, phase: 'request_body', body: 'shed' } } },
  { match: { headers: { 'x-case': 'immediate-100' } }, action: { immediate: { status: 100 } } },
  { match: { headers: { 'x-case': 'close' } }, action: { close: true } },
  { match: { headers: { 'x-case': 'wrong-phase' } }, action: { malformed: 'wrong-phase' } },
  { match: { headers: { 'x-case': 'empty-oneof' } }, action: { malformed: 'empty-oneof' } },
  { match: { headers: { 'x-case': 'value-and-raw-value' } }, action: { malformed: 'value-and-raw-value' } },
  { match: { headers: { 'x-case': 'hang-on-body' } }, action: { hang: { phase: 'request_body' } } },
];

describe.skipIf(gate.skip)('envoy: failure modes against the mock EPP', () => {
  it('envoy is available (CI=true demands it)', () => {
    expect(gate.availability).toEqual({ ok: true });
  });

  let picked: StartedEchoBackend;
  let fallback: StartedEchoBackend;
  let epp: StartedMockEpp;
  const envoys = new Map<string, StartedEnvoy>();

  beforeAll(async () => {
    [picked, fallback] = (await startBackends('picked', 'fallback')) as [StartedEchoBackend, StartedEchoBackend];
    epp = await new MockEpp({ profile: 'lenient', endpoints: [picked.address], rules: RULES }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    for (const failureMode of ['close', 'open'] as FailureMode[]) {
      for (const bodyMode of ['none', 'buffered', 'streamed'] as BodyMode[]) {
        // 500 ms, not Envoy's 200 ms default: headroom for the happy paths on a loaded CI machine.
        const route = routeWithDefaults({ eppAddress: epp.address, bodyMode, failureMode, timeoutMs: 500, fallbackEndpoints: [fallback.address] });
        envoys.set(`${failureMode}/${bodyMode}`, await driver.start(route, { workDir: workDir(`envoy-fm-${failureMode}-${bodyMode}`), runtime: 'local', host: '127.0.0.1' }));
      }
    }
  });
  afterAll(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await epp?.stop();
    await Promise.all([picked?.stop(), fallback?.stop()]);
  });

  const url = (fm: FailureMode, bm: BodyMode): string => `${envoys.get(`${fm}/${bm}`)!.url}/v1/completions`;

  for (const bodyMode of ['none', 'buffered', 'streamed'] as BodyMode[]) {
    describe(`body mode ${bodyMode}`, () => {
      it('relays an ImmediateResponse with its status, headers and body (both failure modes)', async () => {
        for (const fm of ['close', 'open'] as FailureMode[]) {
          const r = await send(url(fm, bodyMode), { headers: { 'x-case': 'immediate' } });
          expect(r.status).toBe(503);
          expect(r.headers['x-epp-reason']).toBe('no-capacity');
          expect(r.headers['retry-after']).toBe('3');
          expect(r.text).toBe('no endpoint ready');
          expect(r.pod).toBeUndefined();
        }
      });

      it('relays x-eppkit-immediate 429 and turns an ImmediateResponse status below 200 into 200', async () => {
        expect((await send(url('close', bodyMode), { headers: { 'x-eppkit-immediate': '429' } })).status).toBe(429);
        const r = await send(url('close', bodyMode), { headers: { 'x-case': 'immediate-100' } });
        expect(r.status).toBe(200);
        expect(r.pod).toBeUndefined();
        expect(r.text).toBe('');
      });

      it('gRPC error, reset and wrong-phase answers: FailClose 500, FailOpen to the fallback pool', async () => {
        const cases: Array<Record<string, string>> = [
          { 'x-eppkit-grpc-error': 'INTERNAL' },
          { 'x-eppkit-grpc-error': 'UNAVAILABLE' },
          { 'x-eppkit-reset': 'true' },
          { 'x-case': 'wrong-phase' },
          { 'x-case': 'empty-oneof' },
        ];
        for (const headers of cases) {
          const closed = await send(url('close', bodyMode), { headers });
          expect(closed.status, JSON.stringify(headers)).toBe(500);
          expect(closed.pod).toBeUndefined();
          const open = await send(url('open', bodyMode), { headers });
          expect(open.status, JSON.stringify(headers)).toBe(200);
          expect(open.pod, JSON.stringify(headers)).toBe('fallback');
        }
      });

      it('a stream the EPP closes with OK before picking: no endpoint, so FailClose 500 and FailOpen fallback', async () => {
        const closed = await send(url('close', bodyMode), { headers: { 'x-case': 'close' } });
        expect(closed.status).toBe(500);
        expect(closed.text).toContain('no endpoint picked');
        expect((await send(url('open', bodyMode), { headers: { 'x-case': 'close' } })).pod).toBe('fallback');
      });

      it("never lets the client's own x-gateway-destination-endpoint header choose the endpoint", async () => {
        const ok = await send(url('close', bodyMode), { headers: { 'x-gateway-destination-endpoint': fallback.address } });
        expect(ok.pod).toBe('picked');
        // EPP skipped on failure: the client's header must not be used either.
        const skipped = await send(url('open', bodyMode), {
          headers: { 'x-gateway-destination-endpoint': '127.0.0.1:1', 'x-eppkit-grpc-error': 'INTERNAL' },
        });
        expect(skipped.status).toBe(200);
        expect(skipped.pod).toBe('fallback');
      });

      it('refuses a garbage pick with 503 instead of proxying it, and 503 for a closed port', async () => {
        const garbage = await send(url('close', bodyMode), { headers: { 'x-eppkit-endpoint': 'not-an-endpoint' } });
        expect(garbage.status).toBe(503);
        expect(garbage.text).toBe('no healthy upstream');
        const closedPort = await send(url('close', bodyMode), { headers: { 'x-eppkit-endpoint': '127.0.0.1:1' } });
        expect(closedPort.status).toBe(503);
      });

      it('accepts a HeaderValue carrying both value and raw_value (Envoy 1.40 uses raw_value)', async () => {
        const r = await send(url('close', bodyMode), { headers: { 'x-case': 'value-and-raw-value' } });
        expect(r.status).toBe(200);
        expect(r.pod).toBe('picked');
      });
    });
  }

  for (const bodyMode of ['none', 'buffered'] as BodyMode[]) {
    it(`${bodyMode}: an EPP slower than message_timeout or hung gives 504 on FailClose, the fallback pool on FailOpen`, async () => {
      const cases: Array<Record<string, string>> = [{ 'x-eppkit-delay-ms': '1500' }, { 'x-eppkit-hang': 'true' }];
      for (const headers of cases) {
        const closed = await send(url('close', bodyMode), { headers });
        expect(closed.status, JSON.stringify(headers)).toBe(504);
        const open = await send(url('open', bodyMode), { headers });
        expect(open.status).toBe(200);
        expect(open.pod).toBe('fallback');
      }
    });
  }

  it('buffered: a hang on the body phase after the pick times out with 504 (FailClose); FailOpen keeps the pick already applied', async () => {
    const closed = await send(url('close', 'buffered'), { headers: { 'x-case': 'hang-on-body' }, body: 'hello' });
    expect(closed.status).toBe(504);
    const open = await send(url('open', 'buffered'), { headers: { 'x-case': 'hang-on-body' }, body: 'hello' });
    expect(open.status).toBe(200);
    expect(open.pod).toBe('picked');
  });

  it('an immediate response on the body phase is relayed in buffered and streamed modes; mode none never sends the body', async () => {
    for (const bm of ['buffered', 'streamed'] as BodyMode[]) {
      const r = await send(url('close', bm), { headers: { 'x-case': 'immediate-on-body' }, body: 'hello' });
      expect(r.status, `${bm}: ${r.text}\n${envoys.get(`close/${bm}`)!.logs().slice(-1500)}`).toBe(429);
      expect(r.text).toBe('shed');
    }
    const none = await send(url('close', 'none'), { headers: { 'x-case': 'immediate-on-body' }, body: 'hello' });
    expect(none.status).toBe(200);
    expect(none.pod).toBe('picked');
  });

  it('streamed: a gRPC error after body chunks were sent is a 500 even on FailOpen; buffered fails open', async () => {
    const streamed = await send(url('open', 'streamed'), { headers: { 'x-eppkit-grpc-error': 'INTERNAL' }, body: 'hello' });
    expect(streamed.status).toBe(500);
    const buffered = await send(url('open', 'buffered'), { headers: { 'x-eppkit-grpc-error': 'INTERNAL' }, body: 'hello' });
    expect(buffered.pod).toBe('fallback');
  });

  it('streamed (FULL_DUPLEX_STREAMED): no message timeout, a slow EPP only delays the request', async () => {
    for (const fm of ['close', 'open'] as FailureMode[]) {
      const r = await send(url(fm, 'streamed'), { headers: { 'x-eppkit-delay-ms': '900' } });
      expect(r.status).toBe(200);
      expect(r.pod).toBe('picked');
    }
  });

  it('streamed: a hung EPP is ended by the stream idle timeout (504 "stream timeout"), even on FailOpen', async () => {
    for (const fm of ['close', 'open'] as FailureMode[]) {
      const r = await send(url(fm, 'streamed'), { headers: { 'x-eppkit-hang': 'true' }, timeoutMs: STREAM_IDLE_MS * 4 });
      expect(r.status).toBe(504);
      expect(r.text).toBe('stream timeout');
    }
  });
});

describe.skipIf(gate.skip)('envoy: EPP down', () => {
  it('FailClose answers 500, FailOpen goes to the fallback pool', async () => {
    const [fallback] = (await startBackends('fallback')) as [StartedEchoBackend];
    // An EPP address nobody listens on: start a mock, note its port, stop it.
    const gone = await new MockEpp({ profile: 'lenient', endpoints: [fallback.address] }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
    const eppAddress = gone.address;
    await gone.stop();
    try {
      for (const bodyMode of ['none', 'buffered', 'streamed'] as BodyMode[]) {
        for (const failureMode of ['close', 'open'] as FailureMode[]) {
          const route = routeWithDefaults({ eppAddress, bodyMode, failureMode, timeoutMs: 2000, fallbackEndpoints: [fallback.address] });
          await using envoy = await driver.start(route, { workDir: workDir('envoy-down'), runtime: 'local', host: '127.0.0.1' });
          const withoutBody = await send(`${envoy.url}/v1/models`);
          const withBody = await send(`${envoy.url}/v1/completions`, { body: 'hi' });
          if (failureMode === 'close') {
            expect(withoutBody.status, bodyMode).toBe(500);
            expect(withBody.status, bodyMode).toBe(500);
          } else {
            expect(withoutBody.status, bodyMode).toBe(200);
            expect(withoutBody.pod).toBe('fallback');
            // FULL_DUPLEX_STREAMED: once body chunks went to the (failed) stream Envoy 1.40
            // cannot fail open any more and answers 500 despite failure_mode_allow.
            expect(withBody.status, bodyMode).toBe(bodyMode === 'streamed' ? 500 : 200);
            if (bodyMode !== 'streamed') expect(withBody.pod).toBe('fallback');
          }
        }
      }
    } finally {
      await fallback.stop();
    }
  });
});
