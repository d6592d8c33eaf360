// One test per row of the facts file's table of real-EPP behaviour (§6), for each fidelity
// profile, so a profile cannot drift from the EPP it models. Real gRPC over a real socket;
// every message encoded and every answer decoded by Envoy's official protos only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawHeader } from '../../core/headers.ts';
import { fromProtoStruct, toProtoStruct } from '../../core/proto-struct.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../core/proto.ts';
import type { ExtProcTestStream, StreamOutcome } from '../../mock-epp/ext-proc-client.ts';
import { PROFILES, type ProfileName } from '../../mock-epp/fidelity-profiles.ts';
import type { JournalEntry } from '../../mock-epp/journal.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { OfficialExtProcClient } from '../support/official-ext-proc-kit.ts';

const POOL = ['127.0.0.2:8000', '127.0.0.3:8000'];
const OUTSIDE = '10.9.9.9:1';
const FULL_DUPLEX = { request_body_mode: 4, response_body_mode: 0 };
const BUFFERED = { request_body_mode: 2, response_body_mode: 0 };
const STREAMED = { request_body_mode: 1, response_body_mode: 0 };

type Pc = typeof FULL_DUPLEX;

function headersMsg(extra: Record<string, string>, eos: boolean, pc: Pc = FULL_DUPLEX, metadata?: Record<string, unknown>): ProcessingRequest {
  const all = { ':authority': 'gw.example', ':path': '/v1/completions', ':method': eos ? 'GET' : 'POST', ':scheme': 'http', ...extra };
  const m: ProcessingRequest = {
    request_headers: { headers: { headers: Object.entries(all).map(([k, v]) => rawHeader(k, v)) }, end_of_stream: eos },
    protocol_config: pc,
  };
  if (metadata) m.metadata_context = { filter_metadata: Object.fromEntries(Object.entries(metadata).map(([ns, v]) => [ns, toProtoStruct(v as never)])) };
  return m;
}
const bodyMsg = (text: string, eos: boolean): ProcessingRequest => ({ request_body: { body: Buffer.from(text), end_of_stream: eos } });

/** Every answer until the mock ends the stream, and how it ended. */
async function drain(s: ExtProcTestStream): Promise<{ answers: ProcessingResponse[]; outcome: StreamOutcome }> {
  const answers: ProcessingResponse[] = [];
  for (let r = await s.next(); r !== undefined; r = await s.next()) answers.push(r);
  return { answers, outcome: await s.outcome };
}
const kinds = (answers: ProcessingResponse[]) => answers.map((a) => Object.keys(a).find((k) => k !== 'dynamic_metadata' && k !== 'mode_override') ?? 'none');

type SetHeaders = NonNullable<NonNullable<NonNullable<ProcessingResponse['request_headers']>['response']>['header_mutation']>['set_headers'];
function setHeaders(a: ProcessingResponse | undefined): Map<string, { value: string; append: unknown; hasValueField: boolean }> {
  const common = a?.request_headers?.response ?? a?.response_headers?.response;
  const out = new Map<string, { value: string; append: unknown; hasValueField: boolean }>();
  for (const o of (common?.header_mutation?.set_headers ?? []) as NonNullable<SetHeaders>) {
    const k = o.header?.key ?? '';
    out.set(k, { value: Buffer.from(o.header?.raw_value ?? []).toString('latin1'), append: o.append, hasValueField: (o.header?.value ?? '') !== '' });
  }
  return out;
}
const lb = (a: ProcessingResponse | undefined) => (fromProtoStruct(a?.dynamic_metadata)['envoy.lb'] as Record<string, unknown> | undefined)?.['x-gateway-destination-endpoint'];

let epp: StartedMockEpp;
let client: OfficialExtProcClient;

beforeAll(async () => {
  epp = await new MockEpp({ endpoints: POOL }).withHost('127.0.0.1').withPort(0).withAdminPort(null).start();
  client = new OfficialExtProcClient(epp.address);
});
afterAll(async () => {
  client?.close();
  await epp?.stop();
});

/** The newest journal entry once its stream has ended. */
async function lastEntry(): Promise<JournalEntry> {
  const all = await epp.waitForJournal(epp.journal.length, 10_000);
  return all[all.length - 1] as JournalEntry;
}

function use(profile: ProfileName, extra: Record<string, unknown> = {}): void {
  epp.setConfig({ profile, endpoints: POOL, ...extra });
}

const strict = (p: ProfileName) => p !== 'lenient';

describe.each(PROFILES)('fidelity profile %s, one test per row of the facts table §6', (profile) => {
  it('every request-headers answer: clear_route_cache, the pick as raw_value, append form, echo header, envoy.lb metadata', async () => {
    use(profile);
    const s = client.open().send(headersMsg({}, true)).end();
    const { answers, outcome } = await drain(s);
    expect(outcome.code).toBe(0);
    expect(kinds(answers)).toEqual(['request_headers']);
    const a = answers[0];
    const sh = setHeaders(a);
    const dest = sh.get('x-gateway-destination-endpoint');
    expect(POOL).toContain(dest?.value);
    expect(dest?.hasValueField).toBe(false);
    expect(lb(a)).toBe(dest?.value);
    expect(a?.request_headers?.response?.clear_route_cache ?? false).toBe(strict(profile));
    // The lightweight and full EPPs leave append unset; lenient sets BoolValue{false}.
    expect(dest?.append).toEqual(profile === 'lenient' ? { value: false } : undefined);
    expect(sh.has('x-echo-set-header')).toBe(profile !== 'gie-epp');
    // The full EPP echoes the request headers, pseudo-headers included.
    expect(sh.get(':path')?.value).toBe(profile === 'gie-epp' ? '/v1/completions' : undefined);
    expect(sh.get(':authority')?.value).toBe(profile === 'gie-epp' ? 'gw.example' : undefined);
  });

  it('request with a body: the headers answer is held until the body has ended, then the body answer', async () => {
    use(profile);
    const s = client.open().send(headersMsg({}, false)).send(bodyMsg('{"model":', false)).send(bodyMsg('"m"}', true)).end();
    const { answers } = await drain(s);
    const e = await lastEntry();
    const lastBodyAt = Math.max(...e.phases.filter((p) => p.phase === 'request_body').map((p) => p.atMs));
    expect(e.answers[0]?.kind).toBe('request_headers');
    expect(e.answers[0]?.atMs).toBeGreaterThanOrEqual(lastBodyAt);
    if (profile === 'gie-lwepp') {
      // One empty BodyResponse per body message.
      expect(kinds(answers)).toEqual(['request_headers', 'request_body', 'request_body']);
      expect(answers[1]?.request_body?.response?.body_mutation).toBeUndefined();
    } else {
      // The whole body echoed once as streamed_response; the full EPP also sets Content-Length.
      expect(kinds(answers)).toEqual(['request_headers', 'request_body']);
      expect(Buffer.from(answers[1]?.request_body?.response?.body_mutation?.streamed_response?.body ?? []).toString()).toBe('{"model":"m"}');
      expect(setHeaders(answers[0]).get('content-length')?.value).toBe(profile === 'gie-epp' ? '13' : undefined);
    }
  });

  it('BUFFERED or STREAMED data plane that waits for the headers answer before the body: never answered (deadlock)', async () => {
    for (const pc of [BUFFERED, STREAMED]) {
      use(profile);
      // The client sends the headers and, like Envoy in these modes, nothing more until answered.
      const s = client.open().send(headersMsg({}, false, pc)).end();
      const { answers } = await drain(s);
      const e = await lastEntry();
      if (strict(profile)) {
        expect(answers).toEqual([]);
        expect(e.problems.join('\n')).toMatch(/^headers-answer-deadlock: DEADLOCK/m);
      } else {
        expect(kinds(answers)).toEqual(['request_headers']);
        expect(e.problems.join('\n')).not.toMatch(/deadlock/);
      }
    }
  });

  it('body ending with trailers: stalls', async () => {
    use(profile);
    const s = client
      .open()
      .send(headersMsg({}, false))
      .send(bodyMsg('{"model":"m"}', false))
      .send({ request_trailers: { trailers: { headers: [rawHeader('x-t', '1')] } } })
      .end();
    const { answers } = await drain(s);
    const e = await lastEntry();
    if (strict(profile)) {
      expect(answers).toEqual([]);
      expect(e.problems.join('\n')).toMatch(/trailers-stall/);
    } else {
      expect(kinds(answers)).toEqual(['request_headers', 'request_body', 'request_trailers']);
    }
  });

  it('pinned endpoint not in the pool; subset hint matching nothing: INTERNAL (lwepp), 429 (epp), 503 (lenient)', async () => {
    const cases = [
      headersMsg({ 'test-epp-endpoint-selection': OUTSIDE }, true),
      headersMsg({}, true, FULL_DUPLEX, { 'envoy.lb.subset_hint': { 'x-gateway-destination-endpoint-subset': [OUTSIDE] } }),
    ];
    for (const m of cases) {
      use(profile);
      const { answers, outcome } = await drain(client.open().send(m).end());
      if (profile === 'gie-lwepp') {
        expect(answers).toEqual([]);
        expect(outcome.code).toBe(13);
        expect((await lastEntry()).end?.how).toBe('grpc-error');
      } else {
        expect(kinds(answers)).toEqual(['immediate_response']);
        expect(answers[0]?.immediate_response?.status?.code).toBe(profile === 'gie-epp' ? 429 : 503);
      }
    }
  });

  it('empty test-epp-endpoint-selection header: whole pool (lwepp), none eligible (epp 429, lenient 503)', async () => {
    use(profile);
    const { answers, outcome } = await drain(client.open().send(headersMsg({ 'test-epp-endpoint-selection': '' }, true)).end());
    expect(outcome.code).toBe(0);
    if (profile === 'gie-lwepp') {
      expect(kinds(answers)).toEqual(['request_headers']);
      expect(POOL).toContain(setHeaders(answers[0]).get('x-gateway-destination-endpoint')?.value);
    } else {
      expect(answers[0]?.immediate_response?.status?.code).toBe(profile === 'gie-epp' ? 429 : 503);
    }
  });

  it('response-headers phase: served endpoint and x-went-into-resp-headers, response headers echoed', async () => {
    use(profile);
    const s = client.open().send(headersMsg({}, true));
    expect(kinds([(await s.next()) as ProcessingResponse])).toEqual(['request_headers']);
    s.send({
      response_headers: { headers: { headers: [rawHeader(':status', '200'), rawHeader('content-type', 'application/json')] }, end_of_stream: false },
      metadata_context: { filter_metadata: { 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': POOL[1] as string }) } },
    }).end();
    const { answers } = await drain(s);
    expect(kinds(answers)).toEqual(['response_headers']);
    const sh = setHeaders(answers[0]);
    const want: Record<ProfileName, Record<string, string | undefined>> = {
      'gie-lwepp': { 'x-conformance-test-served-endpoint': POOL[1], 'x-went-into-resp-headers': 'true', ':status': '200', 'content-type': 'application/json' },
      'gie-epp': { 'x-conformance-test-served-endpoint': undefined, 'x-went-into-resp-headers': 'true', ':status': '200', 'content-type': 'application/json' },
      lenient: { 'x-conformance-test-served-endpoint': undefined, 'x-went-into-resp-headers': undefined, ':status': undefined, 'content-type': undefined },
    };
    for (const [k, v] of Object.entries(want[profile])) expect([k, sh.get(k)?.value]).toEqual([k, v]);
  });

  it('ordering: in order by default; the lightweight EPP defect (body answer before the headers answer) only as an opt-in switch', async () => {
    const send = () => drain(client.open().send(headersMsg({}, false)).send(bodyMsg('{"model":', false)).send(bodyMsg('"m"}', true)).end());
    use(profile);
    expect(kinds((await send()).answers)[0]).toBe('request_headers');
    use(profile, { bodyAnswerBeforeHeaders: true });
    const { answers } = await send();
    expect(kinds(answers).slice(0, 2)).toEqual(['request_body', 'request_headers']);
    // What was answered early is not echoed again.
    const echoed = answers.map((a) => Buffer.from(a.request_body?.response?.body_mutation?.streamed_response?.body ?? []).toString()).join('');
    expect(echoed).toBe(profile === 'gie-lwepp' ? '' : '{"model":"m"}');
  });
});

describe('fidelity profiles: names and defaults', () => {
  it('the default is the lightweight EPP, and the journal records the profile that answered', async () => {
    epp.setConfig({ endpoints: POOL });
    expect(epp.config.profile).toBe('gie-lwepp');
    await drain(client.open().send(headersMsg({}, true)).end());
    expect((await lastEntry()).profile).toBe('gie-lwepp');
    use('lenient');
    await drain(client.open().send(headersMsg({}, true)).end());
    expect((await lastEntry()).profile).toBe('lenient');
  });

  it('a switch set alone wins over its profile: no endpoint as UNAVAILABLE under gie-epp', async () => {
    use('gie-epp', { noEndpoint: { grpcStatus: 'UNAVAILABLE' } });
    const { answers, outcome } = await drain(client.open().send(headersMsg({ 'test-epp-endpoint-selection': OUTSIDE }, true)).end());
    expect(answers).toEqual([]);
    expect(outcome.code).toBe(14);
  });
});
