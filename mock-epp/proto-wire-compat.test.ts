// Wire compatibility of eppkit's hand-written protos (proto/, loaded by core/proto.ts) with an
// independent encoder: Envoy's official API protos as shipped in @grpc/grpc-js-xds
// (deps/envoy-api), loaded with protobufjs. Bytes go both ways and must be identical.
//
// That copy of the official API predates some fields eppkit needs. It has no
// ProcessingRequest.protocol_config (11) / ProtocolConfiguration, no HttpBody
// .end_of_stream_without_message (3), no BodyMutation.streamed_response (3) /
// StreamedBodyResponse, no ProcessingResponse.streamed_immediate_response (11) /
// StreamedImmediateResponse, and no BodySendMode FULL_DUPLEX_STREAMED (4). For those, the
// reference types are built here with protobufjs reflection from the field numbers of the
// facts file (shared/reference/ext-proc-and-epp-facts.md §1) and added to the official ones.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { messageTypes } from '../core/proto.ts';
import { toProtoStruct } from '../core/proto-struct.ts';
import { loadOfficial } from '../test/support/official-ext-proc-kit.ts';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs') as typeof import('protobufjs');

const official = loadOfficial();
const OPTS = { longs: String, enums: Number, bytes: Buffer as unknown as typeof String, defaults: false, oneofs: true };

type Codec = { serialize: (o: object) => Buffer; deserialize: (b: Buffer) => object };
const ours = (name: string) => (messageTypes as unknown as Record<string, Codec>)[`envoy.service.ext_proc.v3.${name}`] as Codec;
const theirs = (name: string) => official.lookupType(`envoy.service.ext_proc.v3.${name}`);

function encodeOfficial(name: string, obj: object): Buffer {
  const t = theirs(name);
  const err = t.verify(t.fromObject(obj) as never);
  if (err) throw new Error(`reference encoder rejects ${name}: ${err}`);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}
function decodeOfficial(name: string, buf: Buffer): object {
  const t = theirs(name);
  return t.toObject(t.decode(buf), OPTS);
}

const h = (k: string, v: string) => ({ key: k, raw_value: Buffer.from(v) });
const meta = {
  filter_metadata: {
    'envoy.lb.subset_hint': toProtoStruct({ 'x-gateway-destination-endpoint-subset': ['10.0.0.1:8000', '10.0.0.2:8000'] }),
    'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': '10.0.0.1:8000', n: 3, ok: true, z: null }),
  },
};

const REQUESTS: Record<string, object> = {
  'request_headers + protocol_config FULL_DUPLEX_STREAMED + metadata + attributes': {
    request_headers: { headers: { headers: [h(':method', 'POST'), h(':path', '/v1/completions'), h('x-a', 'b')] }, end_of_stream: false },
    metadata_context: meta,
    attributes: { 'envoy.filters.http.ext_proc': toProtoStruct({ 'request.path': '/v1' }) },
    observability_mode: true,
    protocol_config: { request_body_mode: 4, response_body_mode: 4, send_body_without_waiting_for_header_response: true },
  },
  'response_headers with served endpoint': {
    response_headers: { headers: { headers: [h(':status', '200')] }, end_of_stream: true },
    metadata_context: meta,
  },
  'request_body (end_of_stream)': { request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true } },
  'response_body end_of_stream_without_message': { response_body: { body: Buffer.alloc(0), end_of_stream_without_message: true } },
  request_trailers: { request_trailers: { trailers: { headers: [h('grpc-status', '0')] } } },
  response_trailers: { response_trailers: { trailers: { headers: [h('x-t', '1')] } } },
};

const pick = {
  status: 1,
  header_mutation: {
    set_headers: [{ header: h('x-gateway-destination-endpoint', '10.0.0.1:8000,10.0.0.2:8000'), append: { value: false }, append_action: 2, keep_empty_value: true }],
    remove_headers: ['x-drop'],
  },
  trailers: { headers: [h('x-tr', 'v')] },
  clear_route_cache: true,
};
const RESPONSES: Record<string, object> = {
  'request_headers with pick + envoy.lb + mode_override + timeout': {
    request_headers: { response: pick },
    dynamic_metadata: toProtoStruct({ 'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.1:8000' } }),
    mode_override: { request_header_mode: 1, response_header_mode: 2, request_body_mode: 4, response_body_mode: 3, request_trailer_mode: 1, response_trailer_mode: 2 },
    override_message_timeout: { seconds: '2', nanos: 500 },
  },
  'response_headers CONTINUE': { response_headers: { response: {} } },
  'request_body body replacement': { request_body: { response: { body_mutation: { body: Buffer.from('new') } } } },
  'response_body clear_body': { response_body: { response: { body_mutation: { clear_body: true } } } },
  'request_body streamed_response (FULL_DUPLEX_STREAMED)': {
    request_body: { response: { body_mutation: { streamed_response: { body: Buffer.from('chunk'), end_of_stream: true } } } },
  },
  request_trailers: { request_trailers: { header_mutation: { set_headers: [{ header: h('x', 'y') }] } } },
  response_trailers: { response_trailers: { header_mutation: { remove_headers: ['x'] } } },
  immediate_response: {
    immediate_response: {
      status: { code: 503 },
      headers: { set_headers: [{ header: h('retry-after', '1') }] },
      body: Buffer.from('no endpoint'),
      grpc_status: { status: 14 },
      details: 'eppkit',
    },
  },
  'streamed_immediate_response headers': { streamed_immediate_response: { headers_response: { headers: { headers: [h(':status', '429')] }, end_of_stream: false } } },
  'streamed_immediate_response body': { streamed_immediate_response: { body_response: { body: Buffer.from('busy'), end_of_stream: true } } },
  'streamed_immediate_response trailers': { streamed_immediate_response: { trailers_response: { trailers: { headers: [h('x', '1')] } } } },
};

describe('ext_proc v3 wire compatibility with Envoy official protos (+ facts-file additions)', () => {
  for (const [typeName, samples] of [
    ['ProcessingRequest', REQUESTS],
    ['ProcessingResponse', RESPONSES],
  ] as const) {
    for (const [label, msg] of Object.entries(samples)) {
      it(`${typeName}: ${label} — same bytes both ways, same decode`, () => {
        const ref = encodeOfficial(typeName, msg);
        const mine = ours(typeName).serialize(msg);
        expect(mine.length).toBeGreaterThan(0);
        expect(mine.toString('hex')).toBe(ref.toString('hex'));
        // Official bytes decoded by ours equal official bytes decoded by the official types.
        expect(ours(typeName).deserialize(ref)).toEqual(decodeOfficial(typeName, ref));
        // And our bytes decoded by the official types re-encode to the same bytes.
        expect(encodeOfficial(typeName, decodeOfficial(typeName, mine)).toString('hex')).toBe(mine.toString('hex'));
      });
    }
  }

  it('a HeaderValue keeps value and raw_value apart (field 2 string, field 3 bytes)', () => {
    const msg = { request_headers: { headers: { headers: [{ key: 'k', value: 'v' }, { key: 'r', raw_value: Buffer.from('w') }] } } };
    const decoded = decodeOfficial('ProcessingRequest', ours('ProcessingRequest').serialize(msg)) as {
      request_headers: { headers: { headers: Array<{ key: string; value?: string; raw_value?: Buffer }> } };
    };
    const [a, b] = decoded.request_headers.headers.headers;
    expect(a).toEqual({ key: 'k', value: 'v' });
    expect(b?.key).toBe('r');
    expect(b?.value).toBeUndefined();
    expect(Buffer.from(b?.raw_value ?? []).toString()).toBe('w');
  });

  it('the official copy really lacks the facts-file fields (so the additions above are needed)', () => {
    const pristine = new protobuf.Root();
    pristine.resolvePath = official.resolvePath;
    pristine.loadSync('envoy/service/ext_proc/v3/external_processor.proto', { keepCase: true });
    const req = pristine.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
    expect(req.fields.protocol_config).toBeUndefined();
  });
});
