// The mock in the BBR role over real gRPC: what upstream BBR answers in FULL_DUPLEX_STREAMED
// and in BUFFERED mode, for a body with a model, without one, not JSON, a non-string model,
// and with requireModel; and the journal of each stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodySendMode, type ProcessingRequest } from '../../core/proto.ts';
import { ExtProcTestClient, envoyHeaders, setHeaderValue } from '../../mock-epp/ext-proc-client.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';

let epp: StartedMockEpp;
let client: ExtProcTestClient;

const pc = (mode: number): Pick<ProcessingRequest, 'protocol_config'> => ({ protocol_config: { request_body_mode: mode, response_body_mode: 0 } });

beforeAll(async () => {
  epp = await new MockEpp({ role: 'bbr', bbr: { chunkBytes: 8 } }).withPort(0).withAdminPort(null).start();
  client = new ExtProcTestClient(epp.address);
});
afterAll(async () => {
  client.close();
  await epp.stop();
});

describe('mock EPP, BBR role', () => {
  it('FULL_DUPLEX_STREAMED: holds the headers answer, then sets X-Gateway-Model-Name and echoes the body in chunks', async () => {
    epp.clearJournal();
    const body = '{"messages":[],"model":"llama-3"}';
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({ 'x-gateway-model-name': 'spoofed' }) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
    s.send({ request_body: { body: Buffer.from(body.slice(0, 10)), end_of_stream: false } });
    s.send({ request_body: { body: Buffer.from(body.slice(10)), end_of_stream: true } });
    const h = await s.next();
    expect(h?.response).toBe('request_headers');
    expect(setHeaderValue(h, 'x-gateway-model-name')).toBe('llama-3');
    expect(h?.request_headers?.response?.clear_route_cache).toBe(true);
    let echoed = '';
    for (;;) {
      const b = await s.next();
      expect(b?.response).toBe('request_body');
      const sr = b?.request_body?.response?.body_mutation?.streamed_response;
      echoed += Buffer.from(sr?.body ?? []).toString();
      if (sr?.end_of_stream) break;
    }
    expect(echoed).toBe(body);
    s.end();
    expect((await s.outcome).code).toBe(0);
    const [e] = await epp.waitForJournal(1);
    expect(e?.requestHeaders?.['x-gateway-model-name']).toBe('spoofed');
    expect(e?.answers[0]?.setHeaders).toEqual({ 'x-gateway-model-name': 'llama-3' });
    expect(e?.requestBody?.size).toBe(body.length);
  });

  it('BUFFERED: headers answered at once, the body answer carries the header', async () => {
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.BUFFERED) });
    const h = await s.next();
    expect(h?.response).toBe('request_headers');
    expect(setHeaderValue(h, 'x-gateway-model-name')).toBeUndefined();
    s.send({ request_body: { body: Buffer.from('{"model":"m2"}'), end_of_stream: true } });
    const b = await s.next();
    expect(b?.response).toBe('request_body');
    expect(setHeaderValue(b, 'x-gateway-model-name')).toBe('m2');
    s.end();
    expect((await s.outcome).code).toBe(0);
  });

  it('no model: the same answers without a mutation; not JSON: gRPC UNKNOWN; a number: stringified', async () => {
    const run = async (body: string) => {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
      s.send({ request_body: { body: Buffer.from(body), end_of_stream: true } });
      const h = await s.next();
      s.end();
      return { h, outcome: await s.outcome };
    };
    const none = await run('{"prompt":"x"}');
    expect(none.h?.response).toBe('request_headers');
    expect(setHeaderValue(none.h, 'x-gateway-model-name')).toBeUndefined();
    const bad = await run('model=x');
    expect(bad.h).toBeUndefined();
    expect(bad.outcome.code).toBe(2);
    const num = await run('{"model":42}');
    expect(setHeaderValue(num.h, 'x-gateway-model-name')).toBe('42');
  });

  it('requireModel: ImmediateResponse 400 for a body without a model', async () => {
    epp.setConfig({ role: 'bbr', bbr: { requireModel: true } });
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    const r = await s.next();
    expect(r?.response).toBe('immediate_response');
    expect(r?.immediate_response?.status?.code).toBe(400);
    s.end();
    await s.outcome;
  });

  it('no body: an empty headers answer at once', async () => {
    const s = client.open();
    s.send({ request_headers: { headers: { headers: envoyHeaders({ ':method': 'GET' }) }, end_of_stream: true }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
    const h = await s.next();
    expect(h?.response).toBe('request_headers');
    expect(setHeaderValue(h, 'x-gateway-model-name')).toBeUndefined();
    s.end();
    expect((await s.outcome).code).toBe(0);
  });
});
