// The pick over real gRPC: header mutation (raw_value only) + envoy.lb metadata, round-robin,
// fallbacks, subset hint, conformance header, served endpoint, buffered holding, journal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodySendMode, type ProcessingResponse } from '../../core/proto.ts';
import { toProtoStruct } from '../../core/proto-struct.ts';
import { ExtProcTestClient, envoyHeaders, lbMetadataValue, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { TRANSPORTS } from '../../mock-epp/grpc-transport.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';

const POOL = ['127.0.0.2:8000', '127.0.0.3:8000', '127.0.0.4:8001'];
let epp: StartedMockEpp;
let client: ExtProcTestClient;

describe.each(TRANSPORTS)('mock EPP pick (%s transport)', (transport) => {
  beforeAll(async () => {
    epp = await new MockEpp({ profile: 'lenient', endpoints: POOL }).withHost('127.0.0.1').withPort(0).withAdminPort(0).withTransport(transport).start();
    client = new ExtProcTestClient(epp.address);
  });
  afterAll(async () => {
    client.close();
    await epp.stop();
  });

  async function headersOnly(headers: Record<string, string> = {}, extra: object = {}): Promise<ProcessingResponse | undefined> {
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders(headers) }, end_of_stream: true }, ...extra });
    const r = await s.next();
    s.end();
    await s.outcome;
    return r;
  }

  describe('mock EPP pick', () => {
    it('answers request headers with the header mutation (raw_value only) and envoy.lb metadata, round-robin', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL });
      const picks: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await headersOnly();
        expect(r?.response).toBe('request_headers');
        const opt = r?.request_headers?.response?.header_mutation?.set_headers?.find((o) => o.header?.key === 'x-gateway-destination-endpoint');
        expect(opt?.header?.value ?? '').toBe('');
        expect(opt?.header?.raw_value).toBeInstanceOf(Buffer);
        const v = setHeaderValue(r, 'x-gateway-destination-endpoint') as string;
        expect(lbMetadataValue(r)).toBe(v);
        picks.push(v);
      }
      expect(picks).toEqual([...POOL, ...POOL]);
    });

    it('journals and counts a pick only when it was sent (not for streams that ended before the headers answer)', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: ['127.0.0.2:8000'], rules: [{ match: { headers: { 'x-slow': 'yes' } }, action: { delay: { ms: 30_000 } } }] });
      epp.clearJournal();
      const counted = () => epp.metrics.picks.get('127.0.0.2:8000');
      const before = counted();
      // Ends with an error before any answer; cancelled while the answer is delayed; a normal pick.
      await headersOnly({ 'x-eppkit-grpc-error': 'UNAVAILABLE' });
      const slow = client.open();
      slow.send({ request_headers: { headers: { headers: envoyHeaders({ 'x-slow': 'yes' }) }, end_of_stream: true } });
      // The headers are in (the pick decided), the answer is being delayed.
      await expect.poll(() => epp.journal[1]?.phases.length).toBe(1);
      slow.cancel();
      expect(await slow.next()).toBeUndefined();
      await headersOnly();
      const entries = await epp.waitForJournal(3, 5000);
      expect(entries.map((e) => e.end?.how)).toEqual(['grpc-error', 'client-cancelled', 'completed']);
      expect(entries.map((e) => e.pick?.value)).toEqual([undefined, undefined, '127.0.0.2:8000']);
      expect(counted() - before).toBe(1);
    });

    it('sets the conformance echo header and honours test-epp-endpoint-selection (ip or ip:port)', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL });
      const r = await headersOnly({ 'test-epp-endpoint-selection': '127.0.0.3' });
      expect(setHeaderValue(r, 'x-gateway-destination-endpoint')).toBe('127.0.0.3:8000');
      expect(setHeaderValue(r, 'x-echo-set-header')).toBe('x-conformance-test-served-endpoint:127.0.0.3:8000');
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        seen.add(setHeaderValue(await headersOnly({ 'test-epp-endpoint-selection': '127.0.0.2:8000,127.0.0.4:8001,10.9.9.9:1' }), 'x-gateway-destination-endpoint') as string);
      }
      expect([...seen].sort()).toEqual(['127.0.0.2:8000', '127.0.0.4:8001']);
      const none = await headersOnly({ 'test-epp-endpoint-selection': '10.1.1.1' });
      expect(none?.response).toBe('immediate_response');
      expect(none?.immediate_response?.status?.code).toBe(503);
    });

    it('lists fallbacks after the pick', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL, fallbacks: 2 });
      const v = setHeaderValue(await headersOnly(), 'x-gateway-destination-endpoint') as string;
      expect(v.split(',')).toHaveLength(3);
      expect(new Set(v.split(','))).toEqual(new Set(POOL));
    });

    it('picks only from the subset hint, and answers 503 when none of it is eligible', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL });
      const hint = (list: string[]) => ({
        metadata_context: { filter_metadata: { 'envoy.lb.subset_hint': toProtoStruct({ 'x-gateway-destination-endpoint-subset': list }) } },
      });
      for (let i = 0; i < 3; i++) {
        const r = await headersOnly({}, hint(['127.0.0.4:8001', '10.0.0.1:80']));
        expect(setHeaderValue(r, 'x-gateway-destination-endpoint')).toBe('127.0.0.4:8001');
      }
      const r = await headersOnly({}, hint([]));
      expect(r?.immediate_response?.status?.code).toBe(503);
      const r2 = await headersOnly({}, hint(['10.0.0.1:80']));
      expect(r2?.immediate_response?.status?.code).toBe(503);
    });

    it('holds the headers answer until a buffered body ends, then answers headers and body; journals it all', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL, picker: { type: 'consistent-hash' } });
      epp.clearJournal();
      const s = client.open();
      const body = Buffer.from(JSON.stringify({ model: 'llama', prompt: 'hi' }));
      s.send({ request_headers: { headers: { headers: envoyHeaders({ 'content-type': 'application/json' }) } } });
      s.send({ request_body: { body, end_of_stream: true } });
      const h = await s.next();
      const b = await s.next();
      expect(h?.response).toBe('request_headers');
      expect(b?.response).toBe('request_body');
      const first = setHeaderValue(h, 'x-gateway-destination-endpoint');
      // The same model hashes to the same endpoint.
      for (let i = 0; i < 3; i++) {
        const s2 = client.open();
        s2.send({ request_headers: { headers: { headers: envoyHeaders({}) } } });
        s2.send({ request_body: { body, end_of_stream: true } });
        expect(setHeaderValue(await s2.next(), 'x-gateway-destination-endpoint')).toBe(first);
        s2.end();
      }
      s.send({
        response_headers: { headers: { headers: envoyHeaders({ ':status': '200' }, false) } },
        metadata_context: { filter_metadata: { 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': first as string }) } },
      });
      expect((await s.next())?.response).toBe('response_headers');
      s.end();
      expect((await s.outcome).code).toBe(0);
      const entries = await epp.waitForJournal(4, 5000);
      const e = entries.find((x) => x.servedEndpoint !== undefined);
      expect(e?.servedEndpoint).toBe(first);
      expect(e?.pick?.value).toBe(first);
      expect(e?.requestBody?.size).toBe(body.length);
      expect(e?.phases.map((p) => p.phase)).toEqual(['request_headers', 'request_body', 'response_headers']);
      expect(e?.answers.map((a) => a.kind)).toEqual(['request_headers', 'request_body', 'response_headers']);
      expect(e?.end?.how).toBe('completed');
      expect(e?.bodyMode).toEqual({ request: 'BUFFERED', response: 'BUFFERED' });
    });

    it('answers headers at once when Envoy announces BUFFERED and waits for the headers answer', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL });
      const s = client.open();
      s.send({
        request_headers: { headers: { headers: envoyHeaders({}) } },
        protocol_config: { request_body_mode: BodySendMode.BUFFERED, response_body_mode: BodySendMode.NONE },
      });
      const h = await s.next();
      expect(h?.response).toBe('request_headers');
      expect(setHeaderValue(h, 'x-gateway-destination-endpoint')).toMatch(/^127\.0\.0\.\d:800\d$/);
      s.send({ request_body: { body: Buffer.from('x'), end_of_stream: true } });
      expect((await s.next())?.response).toBe('request_body');
      s.end();
      expect((await s.outcome).code).toBe(0);
    });
  });
});
