// Every rule action and matcher, and every per-request directive, over real gRPC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodySendMode, type ProcessingResponse } from '../../core/proto.ts';
import { ExtProcTestClient, envoyHeaders, lbMetadataValue, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { TRANSPORTS } from '../../mock-epp/grpc-transport.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import type { MockEppConfigInput } from '../../mock-epp/mock-epp-config.ts';
import { eventually } from '../support/eventually.ts';

const POOL = ['127.0.0.2:8000', '127.0.0.3:8000'];
let epp: StartedMockEpp;
let client: ExtProcTestClient;

describe.each(TRANSPORTS)('mock EPP rules and directives (%s transport)', (transport) => {
  beforeAll(async () => {
    epp = await new MockEpp({ endpoints: POOL }).withPort(0).withAdminPort(null).withTransport(transport).start();
    client = new ExtProcTestClient(epp.address);
  });
  afterAll(async () => {
    client.close();
    await epp.stop();
  });

  function use(cfg: MockEppConfigInput): void {
    epp.setConfig({ endpoints: POOL, ...cfg });
    epp.clearJournal();
  }

  /** Headers-only request (Envoy-like, body mode NONE); returns the first answer and the stream outcome. */
  async function ask(headers: Record<string, string> = {}): Promise<{ r: ProcessingResponse | undefined; code: number; details: string }> {
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders(headers) }, end_of_stream: true }, protocol_config: { request_body_mode: BodySendMode.NONE } });
    const r = await s.next();
    s.end();
    const o = await s.outcome;
    return { r, ...o };
  }

  /** A buffered request (shim-like: no protocol_config) with a JSON body. */
  async function askWithBody(body: string, headers: Record<string, string> = {}): Promise<ProcessingResponse[]> {
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders(headers) } } });
    s.send({ request_body: { body: Buffer.from(body), end_of_stream: true } });
    s.end();
    const out: ProcessingResponse[] = [];
    for (let r = await s.next(); r; r = await s.next()) out.push(r);
    await s.outcome;
    return out;
  }

  const dest = (r: ProcessingResponse | undefined) => setHeaderValue(r, 'x-gateway-destination-endpoint');
  // h2 sends a real RST_STREAM (INTERNAL_ERROR, which the grpc-js client reports as INTERNAL); the
  // grpc-js transport cannot, and ends the call with an INTERNAL status saying so.
  const RESET_DETAILS = transport === 'h2' ? /^Received RST_STREAM with code 2/ : /^mock EPP reset: RST_STREAM is not possible on the grpc-js transport$/;
  const RESET_JOURNAL = transport === 'h2' ? 'RST_STREAM INTERNAL_ERROR' : 'INTERNAL status (grpc-js transport cannot send RST_STREAM)';

  describe('rule matchers', () => {
    it('headers exact, regex and present; method; path', async () => {
      use({
        rules: [
          { name: 'exact', match: { headers: { 'x-tenant': 'a' } }, action: { endpoint: '10.0.0.1:1' } },
          { name: 'regex', match: { headers: { 'x-tenant': { regex: '^b\\d$' } } }, action: { endpoint: '10.0.0.2:1' } },
          { name: 'present', match: { headers: { 'x-flag': { present: true } } }, action: { endpoint: '10.0.0.3:1' } },
          { name: 'method', match: { method: 'GET' }, action: { endpoint: '10.0.0.4:1' } },
          { name: 'path', match: { path: { regex: '^/admin' } }, action: { endpoint: '10.0.0.5:1' } },
        ],
      });
      expect(dest((await ask({ 'x-tenant': 'a' })).r)).toBe('10.0.0.1:1');
      expect(dest((await ask({ 'x-tenant': 'b7' })).r)).toBe('10.0.0.2:1');
      expect(dest((await ask({ 'x-flag': '' })).r)).toBe('10.0.0.3:1');
      expect(dest((await ask({ ':method': 'GET' })).r)).toBe('10.0.0.4:1');
      expect(dest((await ask({ ':path': '/admin/x' })).r)).toBe('10.0.0.5:1');
      expect(POOL).toContain(dest((await ask({ 'x-tenant': 'c' })).r));
      expect(epp.journal.map((e) => e.rule)).toEqual(['exact', 'regex', 'present', 'method', 'path', undefined]);
    });

    it('model in a JSON body and body size', async () => {
      use({
        rules: [
          { match: { model: 'llama-3' }, action: { endpoint: '10.0.0.7:1' } },
          { match: { bodySize: { min: 100 } }, action: { endpoint: '10.0.0.8:1' } },
        ],
      });
      expect(dest((await askWithBody('{"model":"llama-3"}'))[0])).toBe('10.0.0.7:1');
      expect(dest((await askWithBody(JSON.stringify({ model: 'x', pad: 'p'.repeat(200) })))[0])).toBe('10.0.0.8:1');
      expect(POOL).toContain(dest((await askWithBody('{"model":"x"}'))[0]));
    });

    it('nth and everyKth count streams since the config swap', async () => {
      use({
        rules: [
          { match: { nth: 2 }, action: { endpoint: '10.0.0.2:2' } },
          { match: { everyKth: 3 }, action: { endpoint: '10.0.0.3:3' } },
        ],
      });
      const got: string[] = [];
      for (let i = 0; i < 6; i++) got.push(dest((await ask()).r) as string);
      expect(got[1]).toBe('10.0.0.2:2');
      expect(got[2]).toBe('10.0.0.3:3');
      expect(got[5]).toBe('10.0.0.3:3');
      expect(POOL).toContain(got[0]);
      expect(POOL).toContain(got[3]);
    });

    it('probability with a seed is repeatable', async () => {
      const run = async () => {
        use({ rules: [{ match: { probability: 0.5, seed: 42 }, action: { endpoint: '10.9.9.9:9' } }] });
        const hits: boolean[] = [];
        for (let i = 0; i < 20; i++) hits.push(dest((await ask()).r) === '10.9.9.9:9');
        return hits;
      };
      const a = await run();
      const b = await run();
      expect(a).toEqual(b);
      expect(a.some(Boolean)).toBe(true);
      expect(a.every(Boolean)).toBe(false);
    });
  });

  describe('rule actions', () => {
    it('endpoint list (fallbacks) is sent literally, even garbage', async () => {
      use({ rules: [{ match: { headers: { 'x-k': '1' } }, action: { endpoint: ['10.1.1.1:80', '10.1.1.2:80'] } }, { action: { endpoint: 'garbage!!' } }] });
      const a = await ask({ 'x-k': '1' });
      expect(dest(a.r)).toBe('10.1.1.1:80,10.1.1.2:80');
      expect(lbMetadataValue(a.r)).toBe('10.1.1.1:80,10.1.1.2:80');
      expect(dest((await ask()).r)).toBe('garbage!!');
    });

    it('immediate response with status, headers and body', async () => {
      use({ rules: [{ action: { immediate: { status: 429, headers: { 'retry-after': '3' }, body: 'slow down' } } }] });
      const { r, code } = await ask();
      expect(code).toBe(0);
      expect(r?.response).toBe('immediate_response');
      expect(r?.immediate_response?.status?.code).toBe(429);
      expect(Buffer.from(r?.immediate_response?.body ?? []).toString()).toBe('slow down');
      const hdr = r?.immediate_response?.headers?.set_headers?.[0]?.header;
      expect(hdr?.key).toBe('retry-after');
      expect(hdr?.value ?? '').toBe('');
      expect(Buffer.from(hdr?.raw_value ?? []).toString()).toBe('3');
      expect((await epp.waitForJournal(1, 2000))[0]?.end?.how).toBe('immediate-response');
    });

    it('gRPC error at request_headers and at response_headers', async () => {
      use({ rules: [{ action: { grpcError: { code: 'RESOURCE_EXHAUSTED', message: 'shed: 100% busy (café)' } } }] });
      const a = await ask();
      expect(a.r).toBeUndefined();
      expect(a.code).toBe(8);
      expect(a.details).toBe('shed: 100% busy (café)');
      use({ rules: [{ action: { grpcError: { code: 13, phase: 'response_headers' } } }] });
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
      expect((await s.next())?.response).toBe('request_headers');
      s.send({ response_headers: { headers: { headers: envoyHeaders({ ':status': '200' }, false) } } });
      expect(await s.next()).toBeUndefined();
      expect((await s.outcome).code).toBe(13);
      expect((await epp.waitForJournal(1, 2000))[0]?.end).toMatchObject({ how: 'grpc-error', grpcCode: 13 });
    });

    it('delay fixed, uniform and log-normal, at a chosen phase', async () => {
      use({ rules: [{ action: { delay: { ms: 60 } } }] });
      await ask();
      use({ rules: [{ action: { delay: { uniform: { min: 40, max: 50 } } } }] });
      await ask();
      use({ rules: [{ action: { delay: { logNormal: { medianMs: 30, sigma: 0 } } } }] });
      await ask();
      use({ rules: [{ action: { delay: { ms: 50, phase: 'response_headers' } } }] });
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
      await s.next();
      s.send({ response_headers: { headers: { headers: envoyHeaders({ ':status': '200' }, false) } } });
      await s.next();
      s.end();
      await s.outcome;
      const [e] = await epp.waitForJournal(1, 2000);
      // Lower bounds only: a delay can only make the answer later.
      expect(e?.answers[1]?.serviceTimeMs).toBeGreaterThanOrEqual(49);
    });

    it('hang: no answer; the stream ends when the client cancels', async () => {
      use({ rules: [{ action: { hang: true } }] });
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
      const pending = s.next();
      // Cancel once the mock holds the stream (hanging), not before it has seen it.
      await eventually(() => epp.openStreams === 1, 'the stream open (hanging) at the mock');
      s.cancel();
      expect(await pending).toBeUndefined();
      expect((await s.outcome).code).toBe(1);
      const [e] = await epp.waitForJournal(1, 2000);
      expect(e?.end?.how).toBe('client-cancelled');
      expect(e?.answers).toEqual([]);
    });

    it('close early with OK', async () => {
      use({ rules: [{ action: { close: true } }] });
      const { r, code } = await ask();
      expect(r).toBeUndefined();
      expect(code).toBe(0);
      expect((await epp.waitForJournal(1, 2000))[0]?.end?.how).toBe('closed-ok');
    });

    it('reset: the client sees RST_STREAM (h2) or an INTERNAL status (grpc-js)', async () => {
      use({ rules: [{ action: { reset: true } }] });
      const { r, code, details } = await ask();
      expect(r).toBeUndefined();
      expect(code).toBe(13);
      expect(details).toMatch(RESET_DETAILS);
      const end = (await epp.waitForJournal(1, 2000))[0]?.end;
      expect(end?.how).toBe('reset');
      expect(end?.detail).toBe(RESET_JOURNAL);
    });

    it('malformed answers: wrong phase, empty oneof, garbage / IPv6 endpoint, value + raw_value', async () => {
      use({ rules: [{ action: { malformed: 'wrong-phase' } }] });
      expect((await ask()).r?.response).toBe('response_headers');
      use({ rules: [{ action: { malformed: 'empty-oneof' } }] });
      const empty = (await ask()).r;
      expect(empty).toBeDefined();
      expect(empty?.response).toBeUndefined();
      use({ rules: [{ action: { malformed: 'garbage-endpoint' } }] });
      expect(dest((await ask()).r)).toBe('not-an-endpoint:garbage');
      use({ rules: [{ action: { malformed: 'ipv6-endpoint' } }] });
      expect(dest((await ask()).r)).toBe('[::1]:8000');
      use({ rules: [{ action: { malformed: 'value-and-raw-value' } }] });
      const both = (await ask()).r?.request_headers?.response?.header_mutation?.set_headers?.find((o) => o.header?.key === 'x-gateway-destination-endpoint');
      expect(both?.header?.value).toMatch(/^127\.0\.0\.\d:8000$/);
      expect(Buffer.from(both?.header?.raw_value ?? []).toString()).toBe(both?.header?.value);
      use({ rules: [{ action: { malformed: { kind: 'wrong-phase', phase: 'request_body' } } }] });
      const rs = await askWithBody('{}');
      expect(rs.map((r) => r.response)).toEqual(['request_headers', 'request_headers']);
    });

    it('header set/remove, body replacement and mode_override', async () => {
      use({
        rules: [
          {
            action: {
              setHeaders: { 'x-added': 'yes' },
              removeHeaders: ['X-Secret'],
              replaceBody: '{"model":"other"}',
              modeOverride: { responseHeaderMode: 'SKIP', responseBodyMode: 'NONE' },
            },
          },
        ],
      });
      const [h, b] = await askWithBody('{"model":"m"}');
      expect(setHeaderValue(h, 'x-added')).toBe('yes');
      expect(h?.request_headers?.response?.header_mutation?.remove_headers).toEqual(['x-secret']);
      expect(h?.mode_override).toEqual({ response_header_mode: 2, response_body_mode: 0 });
      expect(Buffer.from(b?.request_body?.response?.body_mutation?.body ?? []).toString()).toBe('{"model":"other"}');
    });
  });

  describe('directives', () => {
    it('x-eppkit-endpoint, -immediate, -grpc-error, -delay-ms, -hang, -reset, -close', async () => {
      use({});
      expect(dest((await ask({ 'x-eppkit-endpoint': 'whatever:1' })).r)).toBe('whatever:1');
      expect((await ask({ 'x-eppkit-immediate': '503' })).r?.immediate_response?.status?.code).toBe(503);
      const unavailable = await ask({ 'x-eppkit-grpc-error': 'UNAVAILABLE' });
      expect(unavailable.code).toBe(14);
      // grpc-message percent-encoded once, as the spec says (encodeURIComponent left '%3A' in it).
      expect(unavailable.details).toBe('x-eppkit-grpc-error: UNAVAILABLE');
      expect((await ask({ 'x-eppkit-grpc-error': '7' })).code).toBe(7);
      expect((await ask({ 'x-eppkit-reset': 'true' })).details).toMatch(RESET_DETAILS);
      expect((await ask({ 'x-eppkit-close': 'true' })).r).toBeUndefined();
      await ask({ 'x-eppkit-delay-ms': '40' });
      const delayed = epp.journal.at(-1);
      expect(delayed?.directives).toEqual({ 'x-eppkit-delay-ms': '40' });
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({ 'x-eppkit-hang': 'true' }) }, end_of_stream: true } });
      setTimeout(() => s.cancel(), 50);
      expect(await s.next()).toBeUndefined();
      const ends = (await epp.waitForJournal(8, 3000)).map((e) => e.end?.how);
      expect(ends).toEqual(['completed', 'immediate-response', 'grpc-error', 'grpc-error', 'reset', 'closed-ok', 'completed', 'client-cancelled']);
      expect(delayed?.answers[0]?.serviceTimeMs).toBeGreaterThanOrEqual(39);
    });

    it('a bad directive is reported in the journal and ignored', async () => {
      use({});
      const { r } = await ask({ 'x-eppkit-immediate': 'soon' });
      expect(r?.response).toBe('request_headers');
      expect(epp.journal.at(-1)?.problems[0]).toMatch(/x-eppkit-immediate/);
    });

    it('directives: false turns them off (the conformance header still works)', async () => {
      use({ directives: false });
      const { r } = await ask({ 'x-eppkit-immediate': '503', 'test-epp-endpoint-selection': '127.0.0.3' });
      expect(r?.response).toBe('request_headers');
      expect(dest(r)).toBe('127.0.0.3:8000');
    });
  });

  describe('pickers', () => {
    it('random and weighted pick from the pool; weight 0 is never picked', async () => {
      use({ picker: 'random' });
      for (let i = 0; i < 5; i++) expect(POOL).toContain(dest((await ask()).r));
      use({ picker: { type: 'weighted', weights: { '127.0.0.2:8000': 0, '127.0.0.3:8000': 5 } } });
      for (let i = 0; i < 10; i++) expect(dest((await ask()).r)).toBe('127.0.0.3:8000');
    });

    it('consistent hash on a header is stable per key', async () => {
      use({ picker: { type: 'consistent-hash', header: 'x-session' } });
      const a = dest((await ask({ 'x-session': 'abc' })).r);
      for (let i = 0; i < 5; i++) expect(dest((await ask({ 'x-session': 'abc' })).r)).toBe(a);
    });

    it('least-loaded avoids the endpoint with the deeper simulated queue and counts open streams', async () => {
      use({ picker: { type: 'least-loaded', initialDepth: { '127.0.0.2:8000': 5 } } });
      // Open streams (not ended) hold their slot.
      const open = [];
      for (let i = 0; i < 3; i++) {
        const s = client.open();
        s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } });
        open.push({ s, v: dest(await s.next()) });
      }
      expect(open.map((o) => o.v)).toEqual(['127.0.0.3:8000', '127.0.0.3:8000', '127.0.0.3:8000']);
      expect(epp.queueDepths()).toEqual({ '127.0.0.2:8000': 5, '127.0.0.3:8000': 3 });
      for (const o of open) o.s.end();
      await Promise.all(open.map((o) => o.s.outcome));
      await epp.waitForJournal(3, 2000);
      expect(epp.queueDepths()).toEqual({ '127.0.0.2:8000': 5, '127.0.0.3:8000': 0 });
    });
  });
});
