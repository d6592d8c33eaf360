import { describe, expect, it } from 'vitest';
import { BodySendMode } from '../core/proto.ts';
import { encodeProcessingResponse } from './ext-proc-codec.ts';
import { parseMockEppConfig } from './mock-epp-config.ts';
import { bodyAnswer, immediateAnswer, requestHeadersAnswer, trailersAnswer } from './session-answers.ts';
import { delayAt, faultFor, hasFaultAt, malformedFor } from './session-faults.ts';

const cfg = parseMockEppConfig({ profile: 'lenient' });
const headers = { ':path': '/x', 'content-length': '3' };
const setKeys = (r: ReturnType<typeof requestHeadersAnswer>['resp']) =>
  (r.request_headers?.response?.header_mutation?.set_headers ?? []).map((o) => `${o.header?.key}=${Buffer.from(o.header?.raw_value ?? []).toString()}`);

describe('requestHeadersAnswer', () => {
  it('the plain pick: header + envoy.lb metadata, shared and frozen, so it is encoded once', () => {
    const a = requestHeadersAnswer({ cfg, action: {}, value: '10.0.0.1:80', malformed: undefined, requestHeaders: headers, bodySize: undefined });
    const b = requestHeadersAnswer({ cfg, action: {}, value: '10.0.0.1:80', malformed: undefined, requestHeaders: headers, bodySize: undefined });
    expect(setKeys(a.resp)).toEqual(['x-gateway-destination-endpoint=10.0.0.1:80', 'x-echo-set-header=x-conformance-test-served-endpoint:10.0.0.1:80']);
    expect(a.ans).toEqual({ kind: 'request_headers', dynamicMetadata: { 'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.1:80' } }, setHeaders: { 'x-gateway-destination-endpoint': '10.0.0.1:80', 'x-echo-set-header': 'x-conformance-test-served-endpoint:10.0.0.1:80' } });
    expect(b.resp).toBe(a.resp);
    expect(b.ans).not.toBe(a.ans);
    expect(Object.isFrozen(a.resp)).toBe(true);
    expect(encodeProcessingResponse(b.resp)).toBe(encodeProcessingResponse(a.resp));
  });

  it('rule mutations, append, remove and mode override are built per stream', () => {
    const { resp, ans } = requestHeadersAnswer({
      cfg,
      action: { setHeaders: { 'X-A': '1' }, appendHeaders: { 'x-b': '2' }, removeHeaders: ['X-C'], modeOverride: { responseHeaderMode: 'SKIP', requestBodyMode: 'NONE' } },
      value: 'p:1',
      malformed: undefined,
      requestHeaders: headers,
      bodySize: undefined,
    });
    expect(setKeys(resp)).toContain('x-a=1');
    expect(resp.request_headers?.response?.header_mutation?.remove_headers).toEqual(['x-c']);
    expect(resp.mode_override).toEqual({ response_header_mode: 2, request_body_mode: 0 });
    expect(ans).toMatchObject({ setHeaders: { 'x-a': '1', '+x-b': '2' }, removeHeaders: ['x-c'], modeOverride: { response_header_mode: 'SKIP', request_body_mode: 'NONE' } });
  });

  it('malformed: wrong phase, empty oneof', () => {
    const wrong = requestHeadersAnswer({ cfg, action: {}, value: 'p:1', malformed: 'wrong-phase', requestHeaders: headers, bodySize: undefined });
    expect(wrong.resp.request_headers).toBeUndefined();
    expect(wrong.resp.response_headers).toBeDefined();
    expect(wrong.ans).toMatchObject({ kind: 'response_headers', malformed: 'wrong-phase' });
    const none = requestHeadersAnswer({ cfg, action: {}, value: 'p:1', malformed: 'empty-oneof', requestHeaders: headers, bodySize: undefined });
    expect(none.ans.kind).toBe('none');
    expect(none.resp.dynamic_metadata).toBeDefined();
  });
});

describe('body, trailers and immediate answers', () => {
  it('an empty body answer is shared; full duplex echoes; a replacement goes on the last chunk', () => {
    const b = { body: Buffer.from('abc'), end_of_stream: true };
    const empty = bodyAnswer('request_body', BodySendMode.BUFFERED, 'empty', undefined, b, b.body, undefined);
    expect(empty.resp).toBe(bodyAnswer('request_body', BodySendMode.BUFFERED, 'empty', undefined, b, b.body, undefined).resp);
    const echo = bodyAnswer('request_body', BodySendMode.FULL_DUPLEX_STREAMED, 'streamed-echo', undefined, b, b.body, undefined);
    expect(echo.ans.streamedBody).toEqual({ size: 3, endOfStream: true });
    const mid = bodyAnswer('request_body', BodySendMode.STREAMED, 'empty', 'new', { end_of_stream: false }, b.body, undefined);
    expect(mid.resp.request_body?.response?.body_mutation).toEqual({ clear_body: true });
    const last = bodyAnswer('request_body', BodySendMode.STREAMED, 'empty', 'new', b, b.body, undefined);
    expect(last.ans.bodySize).toBe(3);
  });

  it('trailers answer with an empty mutation; immediate carries status, headers, body, details', () => {
    expect(trailersAnswer('response_trailers', undefined).resp).toEqual({ response_trailers: { header_mutation: {} } });
    const imm = immediateAnswer({ kind: 'immediate', status: 429, headers: { 'retry-after': '3' }, body: 'slow', details: 'd' }, 'unset');
    expect(imm.ans).toEqual({ kind: 'immediate_response', status: 429, bodySize: 4 });
    expect(imm.resp.immediate_response?.details).toBe('d');
  });
});

describe('faults of a phase', () => {
  it('terminal faults in order (hang before reset ...), delays apart, malformed defaulting to request_headers', () => {
    const a = { hang: { phase: 'response_headers' as const }, grpcError: { code: 'UNAVAILABLE', phase: 'request_headers' as const }, delay: { ms: 5, phase: 'request_body' as const }, malformed: 'garbage-endpoint' as const };
    expect(faultFor(a, 'request_headers')).toEqual({ kind: 'grpc-error', code: 14, message: 'injected by mock EPP rule' });
    expect(faultFor(a, 'response_headers')).toEqual({ kind: 'hang' });
    expect(faultFor(a, 'request_body')).toBeUndefined();
    expect(delayAt(a, 'request_body')).toEqual({ ms: 5, phase: 'request_body' });
    expect(hasFaultAt(a, 'request_body')).toBe(true);
    expect(hasFaultAt(a, 'response_body')).toBe(false);
    expect(malformedFor(a, 'request_headers')).toBe('garbage-endpoint');
    expect(malformedFor(a, 'request_body')).toBeUndefined();
    expect(malformedFor({ malformed: { kind: 'wrong-phase', phase: 'request_body' } }, 'request_body')).toBe('wrong-phase');
  });
});
