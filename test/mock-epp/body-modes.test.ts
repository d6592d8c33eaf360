// Every body mode over real gRPC: NONE, BUFFERED, STREAMED, BUFFERED_PARTIAL and
// FULL_DUPLEX_STREAMED (streamed_response; held headers answer), plus the response phases
// and trailers, and mode detection from protocol_config vs the config default.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodySendMode, type ProcessingRequest } from '../../core/proto.ts';
import { ExtProcTestClient, envoyHeaders, setHeaderValue, type ExtProcTestStream } from '../../mock-epp/ext-proc-client.ts';
import { TRANSPORTS } from '../../mock-epp/grpc-transport.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';

const POOL = ['127.0.0.2:8000', '127.0.0.3:8000'];
let epp: StartedMockEpp;
let client: ExtProcTestClient;

describe.each(TRANSPORTS)('mock EPP body modes (%s transport)', (transport) => {
  beforeAll(async () => {
    epp = await new MockEpp({ profile: 'lenient', endpoints: POOL }).withPort(0).withAdminPort(null).withTransport(transport).start();
    client = new ExtProcTestClient(epp.address);
  });
  afterAll(async () => {
    client.close();
    await epp.stop();
  });

  const pc = (req: number, resp = req, wait = false): Pick<ProcessingRequest, 'protocol_config'> => ({
    protocol_config: { request_body_mode: req, response_body_mode: resp, send_body_without_waiting_for_header_response: wait },
  });

  /** Whether an answer arrives within a short window (used only to prove one is *held*). */
  async function answeredWithin(s: ExtProcTestStream, ms: number): Promise<boolean> {
    const r = await Promise.race([s.next().then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), ms))]);
    return r;
  }

  describe('mock EPP body modes', () => {
    it('NONE: answers headers at once even without end_of_stream', async () => {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.NONE) });
      const h = await s.next();
      expect(h?.response).toBe('request_headers');
      expect(setHeaderValue(h, 'x-gateway-destination-endpoint')).toBeDefined();
      s.end();
      expect((await s.outcome).code).toBe(0);
    });

    it('FULL_DUPLEX_STREAMED: holds headers until the body ends, then headers + one streamed_response with the whole body', async () => {
      epp.clearJournal();
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
      s.send({ request_body: { body: Buffer.from('{"model":'), end_of_stream: false } });
      // The decision needs the whole body, so nothing may be answered yet. (A held answer cannot be
      // proven by waiting forever; a short window is enough to catch an eager answer.)
      const next = s.next();
      s.send({ request_body: { body: Buffer.from('"m"}'), end_of_stream: true } });
      const h = await next;
      expect(h?.response).toBe('request_headers');
      const b = await s.next();
      expect(b?.response).toBe('request_body');
      const sr = b?.request_body?.response?.body_mutation?.streamed_response;
      expect(Buffer.from(sr?.body ?? []).toString()).toBe('{"model":"m"}');
      expect(sr?.end_of_stream).toBe(true);
      // Response body, streamed: echoed chunk by chunk.
      s.send({ response_headers: { headers: { headers: envoyHeaders({ ':status': '200' }, false) } } });
      expect((await s.next())?.response).toBe('response_headers');
      s.send({ response_body: { body: Buffer.from('part1'), end_of_stream: false } });
      const r1 = await s.next();
      expect(Buffer.from(r1?.response_body?.response?.body_mutation?.streamed_response?.body ?? []).toString()).toBe('part1');
      s.send({ response_body: { body: Buffer.from('part2'), end_of_stream: true } });
      const r2 = await s.next();
      expect(r2?.response_body?.response?.body_mutation?.streamed_response?.end_of_stream).toBe(true);
      s.send({ response_trailers: { trailers: { headers: envoyHeaders({ 'x-t': '1' }, false) } } });
      expect((await s.next())?.response).toBe('response_trailers');
      s.end();
      expect((await s.outcome).code).toBe(0);
      const [e] = await epp.waitForJournal(1, 5000);
      expect(e?.bodyMode).toEqual({ request: 'FULL_DUPLEX_STREAMED', response: 'FULL_DUPLEX_STREAMED' });
      expect(e?.protocolConfig?.requestBodyMode).toBe('FULL_DUPLEX_STREAMED');
      expect(e?.requestBody?.size).toBe(13);
      expect(e?.responseBody?.size).toBe(10);
      expect(e?.answers.map((a) => a.kind)).toEqual(['request_headers', 'request_body', 'response_headers', 'response_body', 'response_body', 'response_trailers']);
    });

    it('FULL_DUPLEX_STREAMED with trailers: the trailers end the held body', async () => {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
      s.send({ request_body: { body: Buffer.from('abc'), end_of_stream: false } });
      expect(await answeredWithin(s, 100)).toBe(false);
      s.send({ request_trailers: { trailers: { headers: envoyHeaders({ 'x-tr': 'v' }, false) } } });
      // The answer that arrived after the trailers is the held headers answer.
      const b = await s.next();
      expect(b?.response).toBe('request_body');
      expect(b?.request_body?.response?.body_mutation?.streamed_response?.end_of_stream).toBe(false);
      expect((await s.next())?.response).toBe('request_trailers');
      s.end();
      expect((await s.outcome).code).toBe(0);
    });

    it('holdHeaders never: FULL_DUPLEX_STREAMED answers headers at once and echoes each chunk', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL, holdHeaders: 'never' });
      try {
        const s = client.open();
        s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
        expect((await s.next())?.response).toBe('request_headers');
        s.send({ request_body: { body: Buffer.from('c1'), end_of_stream: false } });
        expect(Buffer.from((await s.next())?.request_body?.response?.body_mutation?.streamed_response?.body ?? []).toString()).toBe('c1');
        s.send({ request_body: { body: Buffer.from('c2'), end_of_stream: true } });
        const last = await s.next();
        expect(last?.request_body?.response?.body_mutation?.streamed_response?.end_of_stream).toBe(true);
        s.end();
        expect((await s.outcome).code).toBe(0);
      } finally {
        epp.setConfig({ profile: 'lenient', endpoints: POOL });
      }
    });

    it('STREAMED (Envoy waits for headers): answers headers at once, then one BodyResponse per chunk', async () => {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.STREAMED, BodySendMode.STREAMED) });
      expect((await s.next())?.response).toBe('request_headers');
      for (const eos of [false, false, true]) {
        s.send({ request_body: { body: Buffer.from('x'), end_of_stream: eos } });
        const r = await s.next();
        expect(r?.response).toBe('request_body');
        expect(r?.request_body?.response?.body_mutation).toBeUndefined();
      }
      s.send({ response_headers: { headers: { headers: envoyHeaders({ ':status': '200' }, false) } } });
      expect((await s.next())?.response).toBe('response_headers');
      s.send({ response_body: { body: Buffer.from('y'), end_of_stream: true } });
      expect((await s.next())?.response).toBe('response_body');
      s.end();
      expect((await s.outcome).code).toBe(0);
    });

    it('STREAMED with send_body_without_waiting_for_header_response: holds headers, then answers each held chunk', async () => {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.STREAMED, BodySendMode.NONE, true) });
      s.send({ request_body: { body: Buffer.from('a'), end_of_stream: false } });
      expect(await answeredWithin(s, 100)).toBe(false);
      s.send({ request_body: { body: Buffer.from('b'), end_of_stream: true } });
      // The first answer (already pending in answeredWithin's race) is the headers answer.
      const kinds = [(await s.next())?.response, (await s.next())?.response];
      expect(kinds).toEqual(['request_body', 'request_body']);
      s.end();
      expect((await s.outcome).code).toBe(0);
      const e = epp.journal.at(-1);
      expect(e?.answers.map((a) => a.kind)).toEqual(['request_headers', 'request_body', 'request_body']);
    });

    it('BUFFERED_PARTIAL: answers headers at once and each partial body message', async () => {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.BUFFERED_PARTIAL, BodySendMode.NONE) });
      expect((await s.next())?.response).toBe('request_headers');
      s.send({ request_body: { body: Buffer.alloc(1000, 1), end_of_stream: false } });
      expect((await s.next())?.response).toBe('request_body');
      s.send({ request_body: { body: Buffer.alloc(10, 1), end_of_stream: true } });
      expect((await s.next())?.response).toBe('request_body');
      s.end();
      expect((await s.outcome).code).toBe(0);
    });

    it('no protocol_config: the config default body mode applies (defaultBodyMode NONE answers at once)', async () => {
      epp.setConfig({ profile: 'lenient', endpoints: POOL, defaultBodyMode: 'NONE' });
      try {
        const s = client.open();
        s.send({ request_headers: { headers: { headers: envoyHeaders({}) } } });
        expect((await s.next())?.response).toBe('request_headers');
        s.end();
        expect((await s.outcome).code).toBe(0);
        expect(epp.journal.at(-1)?.bodyMode).toEqual({ request: 'NONE', response: 'NONE' });
      } finally {
        epp.setConfig({ profile: 'lenient', endpoints: POOL });
      }
    });

    it('request trailers are answered with a TrailersResponse', async () => {
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.BUFFERED) });
      expect((await s.next())?.response).toBe('request_headers');
      s.send({ request_body: { body: Buffer.from('b'), end_of_stream: false } });
      expect((await s.next())?.response).toBe('request_body');
      s.send({ request_trailers: { trailers: { headers: envoyHeaders({ 'x-tr': '1' }, false) } } });
      expect((await s.next())?.response).toBe('request_trailers');
      s.end();
      expect((await s.outcome).code).toBe(0);
    });

    it('a large body in one message (16 MiB, split over many HTTP/2 frames) is received whole', async () => {
      epp.clearJournal();
      const s = client.open();
      const body = Buffer.alloc(16 * 1024 * 1024, 0x41);
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) } } });
      s.send({ request_body: { body, end_of_stream: true } });
      expect((await s.next())?.response).toBe('request_headers');
      expect((await s.next())?.response).toBe('request_body');
      s.end();
      expect((await s.outcome).code).toBe(0);
      const [e] = await epp.waitForJournal(1, 10_000);
      expect(e?.requestBody?.size).toBe(body.length);
      expect(e?.requestBody?.firstBytes).toBe('A'.repeat(64));
    });

    it('a body message without bytes (end_of_stream only) ends the body in every mode', async () => {
      for (const mode of [BodySendMode.BUFFERED, BodySendMode.STREAMED, BodySendMode.FULL_DUPLEX_STREAMED]) {
        const s = client.open();
        s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(mode, BodySendMode.NONE, true) });
        s.send({ request_body: { body: Buffer.from('ab'), end_of_stream: false } });
        s.send({ request_body: { end_of_stream: true } });
        const kinds = [(await s.next())?.response, (await s.next())?.response];
        expect(kinds[0]).toBe('request_headers');
        expect(kinds[1]).toBe('request_body');
        s.end();
        expect((await s.outcome).code).toBe(0);
        expect(epp.journal.at(-1)?.requestBody?.size).toBe(2);
        expect(epp.journal.at(-1)?.problems).toEqual([]);
      }
    });

    it('holdHeaders when-needed: FULL_DUPLEX_STREAMED holds only when a rule or the picker reads the body', async () => {
      try {
        epp.setConfig({ profile: 'lenient', endpoints: POOL, holdHeaders: 'when-needed' });
        const s = client.open();
        s.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
        expect((await s.next())?.response).toBe('request_headers');
        s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
        expect((await s.next())?.response).toBe('request_body');
        s.end();
        await s.outcome;
        epp.setConfig({ profile: 'lenient', endpoints: POOL, holdHeaders: 'when-needed', rules: [{ match: { model: 'm' }, action: { endpoint: '10.0.0.9:9' } }] });
        const t = client.open();
        t.send({ request_headers: { headers: { headers: envoyHeaders({}) } }, ...pc(BodySendMode.FULL_DUPLEX_STREAMED) });
        t.send({ request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true } });
        const h = await t.next();
        expect(setHeaderValue(h, 'x-gateway-destination-endpoint')).toBe('10.0.0.9:9');
        t.end();
        await t.outcome;
      } finally {
        epp.setConfig({ profile: 'lenient', endpoints: POOL });
      }
    });
  });
});
