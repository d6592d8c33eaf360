// The faults a rule or directive puts on a phase of an ext_proc stream, read from the decided
// action: what the session does instead of (or, for a delay, before) that phase's answer.
import { parseGrpcCode, type MalformedKind, type Phase, type RuleAction } from './mock-epp-config.ts';

export type Fault =
  | { kind: 'hang' }
  | { kind: 'close' }
  | { kind: 'reset' }
  | { kind: 'grpc-error'; code: number; message: string }
  | { kind: 'immediate'; status: number; headers?: Record<string, string>; body?: string; details?: string };

export type ImmediateFault = Extract<Fault, { kind: 'immediate' }>;

const HANG: Fault = { kind: 'hang' };
const RESET: Fault = { kind: 'reset' };
const CLOSE: Fault = { kind: 'close' };

/** The terminal fault of `phase`, if the action puts one there (hang, reset, close, gRPC error, immediate response, in that order). */
export function faultFor(a: RuleAction, phase: Phase): Fault | undefined {
  if (a.hang?.phase === phase) return HANG;
  if (a.reset?.phase === phase) return RESET;
  if (a.close?.phase === phase) return CLOSE;
  if (a.grpcError?.phase === phase) {
    return { kind: 'grpc-error', code: parseGrpcCode(a.grpcError.code) ?? 13, message: a.grpcError.message ?? 'injected by mock EPP rule' };
  }
  if (a.immediate?.phase === phase) {
    const f: ImmediateFault = { kind: 'immediate', status: a.immediate.status };
    if (a.immediate.headers) f.headers = a.immediate.headers;
    if (a.immediate.body !== undefined) f.body = a.immediate.body;
    if (a.immediate.details !== undefined) f.details = a.immediate.details;
    return f;
  }
  return undefined;
}

/** The delay (ms, sampled by the caller) the action puts before the answer of `phase`. */
export function delayAt(a: RuleAction, phase: Phase): NonNullable<RuleAction['delay']> | undefined {
  return a.delay?.phase === phase ? a.delay : undefined;
}

/** The malformed answer the action asks for at `phase` (a bare kind means the request-headers answer). */
export function malformedFor(a: RuleAction, phase: Phase): MalformedKind | undefined {
  const m = a.malformed;
  if (m === undefined) return undefined;
  if (typeof m === 'string') return phase === 'request_headers' ? m : undefined;
  return m.phase === phase ? m.kind : undefined;
}

/** Whether the action has anything at all for `phase` (the common case, nothing, skips the fault step). */
export function hasFaultAt(a: RuleAction, phase: Phase): boolean {
  return a.delay?.phase === phase || a.hang?.phase === phase || a.reset?.phase === phase || a.close?.phase === phase || a.grpcError?.phase === phase || a.immediate?.phase === phase;
}
