// What both lean ext_proc clients (epp-wire-client.ts, epp-h2-client.ts) do with the bytes of
// an EPP's answers and with a call that fails: one piece, so the two cannot drift apart.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { GrpcFrameDecoder } from '../../core/grpc-frame.ts';
import { messageTypes, type ProcessingResponse } from '../../core/proto.ts';

interface MethodDef {
  responseDeserialize: (b: Buffer) => ProcessingResponse;
}
const METHOD = (messageTypes as unknown as Record<string, Record<string, MethodDef>>)['envoy.service.ext_proc.v3.ExternalProcessor']?.Process as MethodDef;

/** A failed call, as grpc-js's ServiceError carries it. */
export interface EppCallError extends Error {
  code: number;
  details: string;
}

export function callError(code: number, details: string): EppCallError {
  const e = new Error(`${code} ${GrpcStatus[code] ?? ''}: ${details}`) as EppCallError;
  e.code = code;
  e.details = details;
  return e;
}

/**
 * Hands every complete answer in `frames` to `onAnswer`, which returns false once the call is
 * over (nothing more is read then). Returns the status the call must fail with when an answer
 * cannot be taken, as a gRPC client does: over the size limit (RESOURCE_EXHAUSTED, nothing more
 * is held), compressed without negotiation, or undecodable (INTERNAL). The caller resets its
 * stream and finishes the call with it.
 */
export function readAnswers(frames: GrpcFrameDecoder, onAnswer: (m: ProcessingResponse) => boolean): { code: number; details: string } | undefined {
  for (let f = frames.next(); f !== undefined; f = frames.next()) {
    if (f.kind === 'too-large') return { code: GrpcStatus.RESOURCE_EXHAUSTED, details: `EPP answer refused: ${f.detail}` };
    if (f.compressed) {
      frames.clear();
      return { code: GrpcStatus.INTERNAL, details: 'compressed message (not negotiated)' };
    }
    let m: ProcessingResponse;
    try {
      m = METHOD.responseDeserialize(f.message);
    } catch (e) {
      frames.clear();
      return { code: GrpcStatus.INTERNAL, details: `undecodable message: ${(e as Error).message}` };
    }
    if (!onAnswer(m)) return undefined;
  }
  return undefined;
}
