import { describe, expect, it } from 'vitest';
import { rawHeader, setHeaderOption } from '../core/headers.ts';
import { messageTypes } from '../core/proto.ts';
import { encodeHealthCheckResponse, encodeProcessingRequest, encodeProcessingResponse } from './ext-proc-codec.ts';
import { toProtoStruct } from '../core/proto-struct.ts';

const types = messageTypes as unknown as Record<string, { serialize: (m: unknown) => Buffer }>;
const loaderSerialize = (m: unknown) => (types['envoy.service.ext_proc.v3.ProcessingResponse'] as { serialize: (m: unknown) => Buffer }).serialize(m);

describe('fast ProcessingResponse encoder', () => {
  const samples: Record<string, object> = {
    pick: {
      request_headers: { response: { header_mutation: { set_headers: [setHeaderOption('x-gateway-destination-endpoint', '10.0.0.1:80'), setHeaderOption('x-echo-set-header', 'a:b')], remove_headers: ['x'] } } },
      dynamic_metadata: toProtoStruct({ 'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.1:80' } }),
      mode_override: { response_header_mode: 2, response_body_mode: 0 },
    },
    'both value and raw_value': { request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'k', value: 'v', raw_value: Buffer.from('v') }, append: { value: false } }] } } } },
    streamed: { request_body: { response: { body_mutation: { streamed_response: { body: Buffer.from('abc'), end_of_stream: true } } } } },
    replace: { request_body: { response: { body_mutation: { body: Buffer.from('new') } } } },
    clear: { response_body: { response: { body_mutation: { clear_body: true } } } },
    trailers: { request_trailers: { header_mutation: {} } },
    immediate: { immediate_response: { status: { code: 503 }, headers: { set_headers: [{ header: rawHeader('retry-after', '1'), append: { value: false } }] }, body: Buffer.from('x'), details: 'd' } },
    'empty oneof': {},
  };
  for (const [name, m] of Object.entries(samples)) {
    it(`${name}: same bytes as the proto loader`, () => {
      expect(encodeProcessingResponse(m).toString('hex')).toBe(loaderSerialize(m).toString('hex'));
    });
  }
  it('health response', () => {
    expect(encodeHealthCheckResponse({ status: 2 }).toString('hex')).toBe('0802');
  });
});

describe('fast ProcessingRequest encoder (node-proxy EPP client)', () => {
  const serialize = (m: unknown) => (types['envoy.service.ext_proc.v3.ProcessingRequest'] as { serialize: (m: unknown) => Buffer }).serialize(m);
  // The shapes node-proxy's EppExchange writes.
  const samples: Record<string, object> = {
    'headers + protocol_config + subset hint': {
      request_headers: { headers: { headers: [rawHeader(':method', 'POST'), rawHeader(':path', '/v1/x'), rawHeader('x-bin', '\u00ff\u0001')] }, end_of_stream: false },
      protocol_config: { request_body_mode: 4, response_body_mode: 0, send_body_without_waiting_for_header_response: true },
      metadata_context: { filter_metadata: { 'envoy.lb.subset_hint': toProtoStruct({ 'x-gateway-destination-endpoint-subset': ['10.0.0.1:80', '[::1]:8000'] }) } },
    },
    'headers only, no body': { request_headers: { headers: { headers: [rawHeader(':method', 'GET')] }, end_of_stream: true }, protocol_config: { request_body_mode: 0, response_body_mode: 0, send_body_without_waiting_for_header_response: false } },
    body: { request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true } },
    'empty body chunk': { request_body: { body: Buffer.alloc(0), end_of_stream: false } },
    'served report': {
      response_headers: { headers: { headers: [rawHeader(':status', '200')] }, end_of_stream: false },
      metadata_context: { filter_metadata: { 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': '10.0.0.1:80' }) } },
    },
    trailers: { request_trailers: { trailers: { headers: [rawHeader('x-t', '1')] } } },
  };
  for (const [name, m] of Object.entries(samples)) {
    it(`${name}: same bytes as the proto loader`, () => {
      expect(encodeProcessingRequest(m).toString('hex')).toBe(serialize(m).toString('hex'));
    });
  }
  it('keeps the health encoder', () => {
    expect(encodeHealthCheckResponse({ status: 2 }).toString('hex')).toBe('0802');
  });
});
