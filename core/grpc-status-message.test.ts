import { describe, expect, it } from 'vitest';
import { decodeGrpcMessage, encodeGrpcMessage } from './grpc-status-message.ts';

describe('grpc-message percent-encoding (gRPC over HTTP/2 spec)', () => {
  it('leaves printable ASCII other than % as it is (once, not encodeURIComponent)', () => {
    expect(encodeGrpcMessage('x-eppkit-grpc-error: UNAVAILABLE')).toBe('x-eppkit-grpc-error: UNAVAILABLE');
    expect(encodeGrpcMessage('a/b?c=d&e#f')).toBe('a/b?c=d&e#f');
  });
  it('escapes %, control bytes and non-ASCII as %XX of the UTF-8 bytes', () => {
    expect(encodeGrpcMessage('100% done')).toBe('100%25 done');
    expect(encodeGrpcMessage('line\nbreak')).toBe('line%0Abreak');
    expect(encodeGrpcMessage('café')).toBe('caf%C3%A9');
  });
  it('decodes what it encodes, and keeps a malformed escape as it is', () => {
    for (const s of ['plain', '100% done', 'café \u{1F600}', 'tab\there', '%zz']) expect(decodeGrpcMessage(encodeGrpcMessage(s))).toBe(s);
    expect(decodeGrpcMessage('50%')).toBe('50%');
    expect(decodeGrpcMessage('%4g')).toBe('%4g');
  });
});
