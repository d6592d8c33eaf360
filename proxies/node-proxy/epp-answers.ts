// What both lean ext_proc clients (epp-wire-client.ts, epp-h2-client.ts) do with the bytes of
// an EPP's answers, its status, and the end of a call: one piece, so the two cannot drift apart.
import type { EventEmitter } from 'node:events';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { GrpcFrameDecoder } from '../../core/grpc-frame.ts';
import { decodeGrpcMessage } from '../../core/grpc-status-message.ts';
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

function callError(code: number, details: string): EppCallError {
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

/**
 * The status in an EPP's trailers (or trailers-only headers), as Envoy reads it: a value that
 * is missing, empty or not an integer is UNKNOWN (grpc-js would take an empty one for OK).
 */
export function grpcStatusOf(value: string | undefined): number {
  if (value === undefined || value === '') return GrpcStatus.UNKNOWN;
  const s = Number(value);
  return Number.isInteger(s) ? s : GrpcStatus.UNKNOWN;
}

/** The grpc-message text. Never decodeURIComponent: it throws on a stray '%' from the EPP. */
export function grpcMessageOf(value: string | undefined): string {
  return value !== undefined ? decodeGrpcMessage(value) : '';
}

/** A call's end, told once by its caller: 'end' (OK) or 'error' (EppCallError), then 'status'. */
export function emitOutcome(call: EventEmitter, code: number, details: string): void {
  if (code === GrpcStatus.OK) call.emit('end');
  else call.emit('error', callError(code, details));
  call.emit('status', { code, details });
}
