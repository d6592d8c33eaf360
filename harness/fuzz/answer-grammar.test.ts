import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerMessage, rawPayload } from '../../mock-epp/fuzz-script.ts';
import { decodeProcessingRequest, encodeProcessingResponse } from '../../mock-epp/ext-proc-codec.ts';
import { messageTypes } from '../../core/proto.ts';
import { fuzzCase } from './request-grammar.ts';

const LIMITS = { timeoutMs: 200, poolSize: 2, maxBodyBytes: 3 * 1024 * 1024, maxConnections: 3, maxRequestsPerConnection: 3 };
const decodeRes = (b: Buffer) => (messageTypes as unknown as Record<string, { deserialize: (b: Buffer) => unknown }>)['envoy.service.ext_proc.v3.ProcessingResponse']!.deserialize(b);
const CTX = { triggerPhase: 'request_headers' as const, pick: '127.0.0.1:9', triggerBody: Buffer.alloc(0), triggerEos: true };

describe('fuzz grammar', () => {
  it('same seed, same cases; cases survive a JSON round trip (case.json)', () => {
    const a = fc.sample(fuzzCase(LIMITS), { seed: 42, numRuns: 20 });
    const b = fc.sample(fuzzCase(LIMITS), { seed: 42, numRuns: 20 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    expect(JSON.stringify(fc.sample(fuzzCase(LIMITS), { seed: 43, numRuns: 20 }))).not.toBe(JSON.stringify(a));
  });

  it('covers append in every form, wrong phases, faults and immediate responses', () => {
    const text = JSON.stringify(fc.sample(fuzzCase(LIMITS), { seed: 7, numRuns: 300 }));
    for (const s of ['"append":"true"', '"append":"false"', '"append":"empty"', '"phase":"none"', '"phase":"response_headers"', '"do":"reset"', '"do":"hang"', '"do":"raw"', '"do":"immediate"', '"do":"delay"', '"hijack":true', '"chunked"', '"abortAfterMs"']) {
      expect(text, s).toContain(s);
    }
  });

  it('encodes each append form as BoolValue (a present empty message for false) or leaves it out', () => {
    for (const [form, want] of [['absent', undefined], ['true', true], ['false', false], ['empty', false]] as const) {
      const bytes = encodeProcessingResponse(answerMessage({ do: 'answer', phase: 'auto', endpointAppend: form }, CTX));
      const m = decodeRes(bytes) as { request_headers: { response: { header_mutation: { set_headers: Array<{ append?: { value?: boolean } }> } } } };
      const append = m.request_headers.response.header_mutation.set_headers[0]?.append;
      if (want === undefined) expect(append).toBeUndefined();
      else expect(append?.value ?? false).toBe(want);
    }
  });

  it('raw emits: garbage and truncated bytes do not decode, an unknown field does', () => {
    expect(() => decodeRes(rawPayload({ do: 'raw', kind: 'garbage', size: 8 }, CTX))).toThrow();
    expect(() => decodeRes(rawPayload({ do: 'raw', kind: 'truncated' }, CTX))).toThrow();
    expect(decodeRes(rawPayload({ do: 'raw', kind: 'unknown-field' }, CTX))).toHaveProperty('request_headers');
    expect(decodeProcessingRequest).toBeTypeOf('function');
  });
});
