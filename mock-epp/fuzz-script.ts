// What the mock EPP does on one ext_proc stream in fuzz mode: a script of "turns", turn k run
// when the k-th message of the data plane arrives, each turn a list of emits (answers in any
// phase, immediate responses, raw bytes, delays, gRPC ends, resets, hangs). Plain JSON, so a
// failing case is saved and replayed as is (harness/fuzz/ generates scripts with fast-check).
// This file turns one emit into the bytes or message the transport sends; fuzz-session.ts runs
// the turns and records what happened for the oracle.
import { toProtoStruct, type Json } from '../core/proto-struct.ts';
import {
  DESTINATION_ENDPOINT_HEADER,
  DESTINATION_ENDPOINT_NAMESPACE,
  type CommonResponse,
  type HeaderValueOption,
  type ProcessingResponse,
  type RequestPhase,
} from '../core/proto.ts';
import { encodeProcessingResponse } from './ext-proc-codec.ts';

export type AnswerPhase = RequestPhase;

/** How `HeaderValueOption.append` is written: unset, BoolValue true/false, or BoolValue with no value (empty message). */
export type AppendForm = 'absent' | 'true' | 'false' | 'empty';

export interface FuzzHeader {
  name: string;
  /** The value as text (latin1 bytes on the wire), or base64 of arbitrary bytes when `base64` is set. */
  value: string;
  base64?: boolean;
  /** Which HeaderValue field carries it: raw_value (what Envoy expects), value, or both (Envoy answers 500). */
  field?: 'raw_value' | 'value' | 'both';
  append?: AppendForm;
  /** HeaderValueOption.append_action (0..3 defined; others out of range). */
  appendAction?: number;
  keepEmptyValue?: boolean;
}

/** Where the answer puts the destination endpoint. */
export type EndpointPlacement = 'both' | 'header' | 'metadata';

/** dynamic_metadata variants: the real layout, wrong value types, a wrong namespace, or none. */
export type MetadataForm = 'lb' | 'number' | 'list' | 'struct' | 'bool' | 'wrong-namespace' | 'none';

export interface AnswerEmit {
  do: 'answer';
  /** 'auto' = the phase of the message that started this turn; 'none' = an empty oneof. */
  phase: 'auto' | 'none' | AnswerPhase;
  /** Endpoint value: 'pick' = the endpoint chosen for this request, 'none' = no destination, else a literal. */
  endpoint?: string;
  placement?: EndpointPlacement;
  /** How the destination header's append is written (the planted-bug case of facts §6). */
  endpointAppend?: AppendForm;
  metadata?: MetadataForm;
  headers?: FuzzHeader[];
  removeHeaders?: string[];
  /** CommonResponse.status (0 CONTINUE, 1 CONTINUE_AND_REPLACE, others out of range). */
  status?: number;
  clearRouteCache?: boolean;
  /** Body mutation: echo the received chunk as a streamed_response, replace with n bytes, clear, or streamed n bytes. */
  body?: { kind: 'echo' | 'replace' | 'clear' | 'streamed'; size?: number; endOfStream?: boolean };
  /** override_message_timeout, ms. */
  overrideTimeoutMs?: number;
  /** mode_override with these raw enum numbers. */
  modeOverride?: Partial<Record<'request_header_mode' | 'response_header_mode' | 'request_body_mode' | 'response_body_mode' | 'request_trailer_mode' | 'response_trailer_mode', number>>;
}

export interface ImmediateEmit {
  do: 'immediate';
  /** HTTP status; absent = no status message at all. */
  status?: number;
  headers?: FuzzHeader[];
  bodySize?: number;
  grpcStatus?: number;
  details?: string;
}

/** Bytes that are not a valid answer (or are, with an unknown field appended). */
export interface RawEmit {
  do: 'raw';
  kind: 'garbage' | 'truncated' | 'unknown-field' | 'empty-frame' | 'append-as-varint';
  /** Seed for the garbage bytes and their length. */
  size?: number;
}

export type FuzzEmit =
  | AnswerEmit
  | ImmediateEmit
  | RawEmit
  | { do: 'delay'; ms: number }
  | { do: 'end'; code: number; message?: string }
  | { do: 'reset' }
  | { do: 'hang' };

/** What the mock does once the turns are used up. */
export type RestMode = 'valid' | 'hang' | 'close' | 'reset';

export interface FuzzScript {
  turns: FuzzEmit[][];
  rest: RestMode;
  /** How the 'valid' rest writes `append` on the destination header (default: unset, as the lightweight EPP). */
  restAppend?: AppendForm;
}

/** The strict real EPP's answer (facts §6, lightweight EPP): raw_value destination, append unset, envoy.lb metadata, clear_route_cache. */
export const VALID_ANSWER: AnswerEmit = Object.freeze({ do: 'answer', phase: 'auto', endpoint: 'pick' }) as AnswerEmit;

/** A script that answers every phase as the real EPP does. */
export const VALID_SCRIPT: FuzzScript = Object.freeze({ turns: [], rest: 'valid' }) as FuzzScript;

export interface EncodeContext {
  /** The phase of the message that started the turn. */
  triggerPhase: AnswerPhase;
  /** The endpoint chosen for this request (ip:port). */
  pick: string;
  /** The bytes of the body message that started the turn (for echo). */
  triggerBody: Buffer;
  /** end_of_stream of the body message that started the turn. */
  triggerEos: boolean;
}

/** Answer phase a message of `phase` expects (the same name on both sides of the oneof). */
export function answerKeyFor(phase: AnswerPhase): AnswerPhase {
  return phase;
}

function headerBytes(h: FuzzHeader): Buffer {
  return h.base64 ? Buffer.from(h.value, 'base64') : Buffer.from(h.value, 'latin1');
}

function appendField(form: AppendForm | undefined): { value?: boolean } | undefined {
  switch (form) {
    case 'true':
      return { value: true };
    case 'false':
      return { value: false };
    case 'empty':
      return {};
    default:
      return undefined;
  }
}

function headerOption(h: FuzzHeader): HeaderValueOption {
  const bytes = headerBytes(h);
  const field = h.field ?? 'raw_value';
  const header: HeaderValueOption['header'] = { key: h.name };
  if (field !== 'value') header.raw_value = bytes;
  if (field !== 'raw_value') header.value = bytes.toString('latin1');
  const o: HeaderValueOption = { header };
  const append = appendField(h.append);
  if (append) o.append = append;
  if (h.appendAction !== undefined) o.append_action = h.appendAction;
  if (h.keepEmptyValue) o.keep_empty_value = true;
  return o;
}

function metadataFor(form: MetadataForm, endpoint: string): ProcessingResponse['dynamic_metadata'] | undefined {
  const put = (v: Json, ns = DESTINATION_ENDPOINT_NAMESPACE) => toProtoStruct({ [ns]: { [DESTINATION_ENDPOINT_HEADER]: v } });
  switch (form) {
    case 'lb':
      return put(endpoint);
    case 'number':
      return put(8000);
    case 'list':
      return put([endpoint, 17]);
    case 'struct':
      return put({ endpoint });
    case 'bool':
      return put(true);
    case 'wrong-namespace':
      return put(endpoint, 'envoy.lb.wrong');
    default:
      return undefined;
  }
}

/** A deterministic filler of n bytes (bodies and oversized values need no randomness of their own). */
export function filler(n: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = 97 + ((i + seed) % 26);
  return b;
}

/** The ProcessingResponse of an answer emit. */
export function answerMessage(e: AnswerEmit, ctx: EncodeContext): ProcessingResponse {
  // 'pick' (alone or as an entry of a list) stands for the request's endpoint.
  const endpoint = e.endpoint === undefined ? ctx.pick : e.endpoint === 'none' ? undefined : e.endpoint.split(',').map((x) => (x === 'pick' ? ctx.pick : x)).join(',');
  const placement = e.placement ?? 'both';
  const set: HeaderValueOption[] = [];
  if (endpoint !== undefined && placement !== 'metadata') {
    set.push(headerOption({ name: DESTINATION_ENDPOINT_HEADER, value: endpoint, append: e.endpointAppend ?? 'absent' }));
  }
  for (const h of e.headers ?? []) set.push(headerOption(h));
  const common: CommonResponse = {};
  if (set.length > 0 || (e.removeHeaders?.length ?? 0) > 0) {
    common.header_mutation = {};
    if (set.length > 0) common.header_mutation.set_headers = set;
    if (e.removeHeaders?.length) common.header_mutation.remove_headers = [...e.removeHeaders];
  }
  if (e.status !== undefined) common.status = e.status;
  if (e.clearRouteCache ?? true) common.clear_route_cache = true;
  const phase = e.phase === 'auto' ? ctx.triggerPhase : e.phase;
  const isBody = phase === 'request_body' || phase === 'response_body';
  if (e.body && isBody) {
    const eos = e.body.endOfStream ?? ctx.triggerEos;
    switch (e.body.kind) {
      case 'echo':
        common.body_mutation = { streamed_response: { body: ctx.triggerBody, end_of_stream: eos } };
        break;
      case 'streamed':
        common.body_mutation = { streamed_response: { body: filler(e.body.size ?? 0), end_of_stream: eos } };
        break;
      case 'replace':
        common.body_mutation = { body: filler(e.body.size ?? 0) };
        break;
      case 'clear':
        common.body_mutation = { clear_body: true };
        break;
    }
  }
  const resp: ProcessingResponse = {};
  if (phase !== 'none') {
    const r = resp as Record<string, unknown>;
    if (phase === 'request_trailers' || phase === 'response_trailers') r[phase] = common.header_mutation ? { header_mutation: common.header_mutation } : {};
    else r[phase] = { response: common };
  }
  // Metadata goes with the answer that carries the destination (the request-headers one in a valid exchange).
  const md = endpoint !== undefined && placement !== 'header' ? metadataFor(e.metadata ?? 'lb', endpoint) : e.metadata && e.metadata !== 'lb' ? metadataFor(e.metadata, ctx.pick) : undefined;
  if (md && (phase === 'request_headers' || e.metadata !== undefined)) resp.dynamic_metadata = md;
  if (e.overrideTimeoutMs !== undefined) {
    const ms = e.overrideTimeoutMs;
    (resp as Record<string, unknown>).override_message_timeout = { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  }
  if (e.modeOverride) resp.mode_override = { ...e.modeOverride };
  return resp;
}

/** The ProcessingResponse of an immediate emit. */
export function immediateMessage(e: ImmediateEmit): ProcessingResponse {
  const imm: NonNullable<ProcessingResponse['immediate_response']> = {};
  if (e.status !== undefined) imm.status = { code: e.status };
  if (e.headers?.length) imm.headers = { set_headers: e.headers.map(headerOption) };
  if (e.bodySize) imm.body = filler(e.bodySize);
  if (e.grpcStatus !== undefined) imm.grpc_status = { status: e.grpcStatus };
  if (e.details !== undefined) imm.details = e.details;
  return { immediate_response: imm };
}

/** Varint of a non-negative integer. */
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** Length-delimited field. */
function ld(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}

/** The payload bytes of a raw emit (the gRPC frame around them is the transport's). */
export function rawPayload(e: RawEmit, ctx: EncodeContext): Buffer {
  const valid = encodeProcessingResponse(answerMessage(VALID_ANSWER, ctx));
  switch (e.kind) {
    case 'garbage': {
      // Field 15, wire type 7 (not a wire type): no decoder can read past the first byte.
      const n = Math.max(1, e.size ?? 8);
      const b = filler(n, 7);
      b[0] = 0x7f;
      return b;
    }
    case 'truncated':
      return valid.subarray(0, Math.max(1, valid.length - 1 - ((e.size ?? 0) % Math.max(1, valid.length - 1))));
    case 'unknown-field':
      // Field 999 (unknown to every decoder, which must skip it): still a valid answer.
      return Buffer.concat([valid, ld(999, filler(e.size ?? 4))]);
    case 'empty-frame':
      // Zero bytes decode to a ProcessingResponse with no oneof set.
      return Buffer.alloc(0);
    case 'append-as-varint': {
      // The destination header with `append` written as a plain bool varint (wire type 0), the
      // shape a decoder that got BoolValue wrong would expect: a conforming decoder must reject it.
      const hv = Buffer.concat([ld(1, Buffer.from(DESTINATION_ENDPOINT_HEADER)), ld(3, Buffer.from(ctx.pick))]);
      const hvo = Buffer.concat([ld(1, hv), Buffer.from([0x10, 0x01])]);
      const mutation = ld(1, hvo);
      const common = ld(2, mutation);
      return ld(1, ld(1, common));
    }
  }
}
