import { EventEmitter } from 'node:events';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { emitOutcome, grpcMessageOf, grpcStatusOf } from './epp-answers.ts';

describe('the EPP status, as both lean clients read it', () => {
  it('takes an integer status; missing, empty or not an integer is UNKNOWN', () => {
    expect(grpcStatusOf('0')).toBe(GrpcStatus.OK);
    expect(grpcStatusOf('14')).toBe(GrpcStatus.UNAVAILABLE);
    // An empty value is not OK: Envoy reads it as an invalid code (grpc-js would take 0).
    expect(grpcStatusOf('')).toBe(GrpcStatus.UNKNOWN);
    expect(grpcStatusOf(undefined)).toBe(GrpcStatus.UNKNOWN);
    expect(grpcStatusOf('ok')).toBe(GrpcStatus.UNKNOWN);
    expect(grpcStatusOf('1.5')).toBe(GrpcStatus.UNKNOWN);
  });

  it('percent-decodes the message and survives a stray %', () => {
    expect(grpcMessageOf('no%20endpoint')).toBe('no endpoint');
    expect(grpcMessageOf('100%')).toBe('100%');
    expect(grpcMessageOf(undefined)).toBe('');
  });

  it("ends a call with 'end' for OK and 'error' otherwise, then 'status'", () => {
    const seen: string[] = [];
    const call = new EventEmitter();
    call.on('end', () => seen.push('end'));
    call.on('error', (e: { code: number; details: string }) => seen.push(`error ${e.code} ${e.details}`));
    call.on('status', (s: { code: number; details: string }) => seen.push(`status ${s.code}`));
    emitOutcome(call, GrpcStatus.OK, '');
    emitOutcome(call, GrpcStatus.INTERNAL, 'undecodable');
    expect(seen).toEqual(['end', 'status 0', 'error 13 undecodable', 'status 13']);
  });
});
