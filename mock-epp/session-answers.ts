// The answers of an ext_proc stream: each builds the ProcessingResponse of one phase and the
// journal's record of it, from the decided action and the config. No stream state: the
// session (ext-proc-session.ts) says what is due, these say what it looks like.
import { headerValueText, rawHeader } from '../core/headers.ts';
import type { Json } from '../core/proto-struct.ts';
import { toProtoStruct } from '../core/proto-struct.ts';
import {
  BodySendMode,
  DESTINATION_ENDPOINT_HEADER,
  DESTINATION_ENDPOINT_NAMESPACE,
  SERVED_ENDPOINT_KEY,
  type CommonResponse,
  type HeaderMutation,
  type HeaderValueOption,
  type HttpBody,
  type ProcessingRequest,
  type ProcessingResponse,
  type ProtoStruct,
} from '../core/proto.ts';
import type { FidelitySwitches } from './fidelity-profiles.ts';
import type { JournalAnswer } from './journal.ts';
import { BODY_MODE_NAMES, type MalformedKind, type MockEppConfig, type RuleAction } from './mock-epp-config.ts';
import type { ImmediateFault } from './session-faults.ts';

/** An answer and its journal record (the session adds the times when it writes it). */
export interface Answer {
  resp: ProcessingResponse;
  ans: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'>;
}

type AnswerKey = 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';

const ECHO_SET_HEADER = 'x-echo-set-header';
const CONFORMANCE_SERVED_HEADER = 'x-conformance-test-served-endpoint';
const WENT_INTO_RESP_HEADERS = 'x-went-into-resp-headers';
const HEADER_MODE_VALUES: Record<string, number> = { DEFAULT: 0, SEND: 1, SKIP: 2 };
/** HeaderValueOption.AppendAction OVERWRITE_IF_EXISTS_OR_ADD. */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

/** A set_headers entry in the form the profile's `append` switch names (always raw_value only). */
export function headerOption(key: string, value: string, form: FidelitySwitches['append']): HeaderValueOption {
  const o: HeaderValueOption = { header: rawHeader(key, value) };
  if (form === 'bool-value') o.append = { value: false };
  else if (form === 'append-action') o.append_action = OVERWRITE_IF_EXISTS_OR_ADD;
  return o;
}

/**
 * Puts an answer under its own phase, or, when a rule asks for a malformed answer, under a
 * wrong phase or under none (an empty oneof), and says so in the journal record.
 */
function placeAnswer(resp: ProcessingResponse, ans: Answer['ans'], malformed: MalformedKind | undefined, right: [AnswerKey, object], wrong: [AnswerKey, object]): void {
  const [key, value] = malformed === 'wrong-phase' ? wrong : right;
  if (malformed === 'empty-oneof') ans.kind = 'none';
  else {
    (resp as Record<string, unknown>)[key] = value;
    ans.kind = key;
  }
  if (malformed) ans.malformed = malformed;
}

type HeadersConfig = Pick<MockEppConfig, 'append' | 'echoRequestHeaders' | 'conformanceEchoHeader' | 'clearRouteCache'>;

/**
 * Pieces of the plain pick answer (no rule headers, no echo, well formed) shared by every
 * stream that sends the same value under one config: built once, never mutated.
 */
interface PlainPick {
  resp: ProcessingResponse;
  setHeaders: Record<string, string>;
  dynamicMetadata: Record<string, Json>;
  clearRouteCache: boolean;
}
const PLAIN_CACHE_LIMIT = 256;
const plainCaches = new WeakMap<object, Map<string, PlainPick>>();

function plainPick(cfg: HeadersConfig, value: string): PlainPick {
  let cache = plainCaches.get(cfg);
  if (!cache) plainCaches.set(cfg, (cache = new Map()));
  let p = cache.get(value);
  if (p) return p;
  const set = [headerOption(DESTINATION_ENDPOINT_HEADER, value, cfg.append)];
  const setHeaders: Record<string, string> = { [DESTINATION_ENDPOINT_HEADER]: value };
  if (cfg.conformanceEchoHeader) {
    const echo = `${CONFORMANCE_SERVED_HEADER}:${value.split(',')[0] ?? value}`;
    set.push(headerOption(ECHO_SET_HEADER, echo, cfg.append));
    setHeaders[ECHO_SET_HEADER] = echo;
  }
  const common: CommonResponse = { header_mutation: { set_headers: set } };
  if (cfg.clearRouteCache) common.clear_route_cache = true;
  p = Object.freeze({
    // Frozen: the codec encodes it once (ext-proc-codec.ts); nothing here is changed later.
    resp: Object.freeze({ request_headers: { response: common }, dynamic_metadata: lbMetadata(value) }),
    setHeaders: Object.freeze(setHeaders) as Record<string, string>,
    dynamicMetadata: Object.freeze({ [DESTINATION_ENDPOINT_NAMESPACE]: Object.freeze({ [DESTINATION_ENDPOINT_HEADER]: value }) }) as Record<string, Json>,
    clearRouteCache: cfg.clearRouteCache,
  });
  // Directives can send any value: past the limit, answers are built per stream as before.
  if (cache.size < PLAIN_CACHE_LIMIT) cache.set(value, p);
  return p;
}

function lbMetadata(value: string): ProtoStruct {
  return toProtoStruct({ [DESTINATION_ENDPOINT_NAMESPACE]: { [DESTINATION_ENDPOINT_HEADER]: value } });
}

export interface RequestHeadersInput {
  cfg: HeadersConfig;
  action: RuleAction;
  /** The value to send (pick and fallbacks), already replaced by a malformed one if asked. */
  value: string | undefined;
  malformed: MalformedKind | undefined;
  requestHeaders: Readonly<Record<string, string>>;
  /** Request body bytes seen so far (the full EPP echoes content-length), when a body was seen. */
  bodySize: number | undefined;
}

/** The request-headers answer: the pick as header mutation and envoy.lb metadata, rule mutations, mode override. */
export function requestHeadersAnswer(x: RequestHeadersInput): Answer {
  const { cfg, action: a, value, malformed } = x;
  const plain =
    value !== undefined && malformed === undefined && !cfg.echoRequestHeaders && a.setHeaders === undefined && a.appendHeaders === undefined && a.removeHeaders === undefined && a.modeOverride === undefined;
  if (plain) {
    const p = plainPick(cfg, value);
    const ans: Answer['ans'] = { kind: 'request_headers', dynamicMetadata: p.dynamicMetadata, setHeaders: p.setHeaders };
    if (p.clearRouteCache) ans.clearRouteCache = true;
    return { resp: p.resp, ans };
  }
  const set: HeaderValueOption[] = [];
  const setLog: Record<string, string> = {};
  const opt = (k: string, v: string) => {
    set.push(headerOption(k, v, cfg.append));
    setLog[k.toLowerCase()] = v;
  };
  if (cfg.echoRequestHeaders) {
    // The full EPP sends the request headers back (pseudo-headers too) and the body's length.
    for (const [k, v] of Object.entries(x.requestHeaders)) if (k !== 'content-length') opt(k, v);
    if (x.bodySize !== undefined) opt('content-length', String(x.bodySize));
  }
  if (value !== undefined) {
    if (malformed === 'value-and-raw-value') {
      set.push({ header: { key: DESTINATION_ENDPOINT_HEADER, value, raw_value: Buffer.from(value) }, append: { value: false } });
      setLog[DESTINATION_ENDPOINT_HEADER] = value;
    } else opt(DESTINATION_ENDPOINT_HEADER, value);
    if (cfg.conformanceEchoHeader) opt(ECHO_SET_HEADER, `${CONFORMANCE_SERVED_HEADER}:${value.split(',')[0] ?? value}`);
  }
  for (const [k, v] of Object.entries(a.setHeaders ?? {})) opt(k, v);
  // append: true (a BoolValue), whatever the profile's form for the others.
  for (const [k, v] of Object.entries(a.appendHeaders ?? {})) {
    set.push({ header: rawHeader(k, v), append: { value: true } });
    setLog[`+${k.toLowerCase()}`] = v;
  }
  const common: CommonResponse = {};
  if (cfg.clearRouteCache) common.clear_route_cache = true;
  if (set.length > 0 || a.removeHeaders?.length) {
    common.header_mutation = {};
    if (set.length > 0) common.header_mutation.set_headers = set;
    if (a.removeHeaders?.length) common.header_mutation.remove_headers = a.removeHeaders.map((h) => h.toLowerCase());
  }
  const resp: ProcessingResponse = {};
  const ans: Answer['ans'] = { kind: 'request_headers' };
  placeAnswer(resp, ans, malformed, ['request_headers', { response: common }], ['response_headers', { response: common }]);
  if (value !== undefined) {
    resp.dynamic_metadata = lbMetadata(value);
    ans.dynamicMetadata = { [DESTINATION_ENDPOINT_NAMESPACE]: { [DESTINATION_ENDPOINT_HEADER]: value } };
  }
  if (a.modeOverride) {
    const mo = a.modeOverride;
    const override: Record<string, number> = {};
    const log: Record<string, string> = {};
    const put = (k: string, v: string | undefined, table: Record<string, number> | readonly string[]) => {
      if (v === undefined) return;
      override[k] = Array.isArray(table) ? table.indexOf(v) : ((table as Record<string, number>)[v] as number);
      log[k] = v;
    };
    put('request_header_mode', mo.requestHeaderMode, HEADER_MODE_VALUES);
    put('response_header_mode', mo.responseHeaderMode, HEADER_MODE_VALUES);
    put('request_body_mode', mo.requestBodyMode, BODY_MODE_NAMES);
    put('response_body_mode', mo.responseBodyMode, BODY_MODE_NAMES);
    put('request_trailer_mode', mo.requestTrailerMode, HEADER_MODE_VALUES);
    put('response_trailer_mode', mo.responseTrailerMode, HEADER_MODE_VALUES);
    resp.mode_override = override as ProcessingResponse['mode_override'];
    ans.modeOverride = log;
  }
  if (Object.keys(setLog).length) ans.setHeaders = setLog;
  if (common.header_mutation?.remove_headers) ans.removeHeaders = common.header_mutation.remove_headers;
  if (common.clear_route_cache) ans.clearRouteCache = true;
  return { resp, ans };
}

const EMPTY_BODY_ANSWERS = {
  request_body: Object.freeze({ request_body: Object.freeze({ response: Object.freeze({}) }) }) as ProcessingResponse,
  response_body: Object.freeze({ response_body: Object.freeze({ response: Object.freeze({}) }) }) as ProcessingResponse,
};

/** A body answer: empty, a replacement (rule `replaceBody`), or the streamed echo (FULL_DUPLEX_STREAMED). */
export function bodyAnswer(
  phase: 'request_body' | 'response_body',
  mode: number,
  bodyAnswerMode: MockEppConfig['bodyAnswer'],
  replace: string | undefined,
  b: HttpBody,
  body: Buffer,
  malformed: MalformedKind | undefined,
): Answer {
  const eos = b.end_of_stream === true || b.end_of_stream_without_message === true;
  const ans: Answer['ans'] = { kind: phase };
  const streamedEcho = mode === BodySendMode.FULL_DUPLEX_STREAMED && (bodyAnswerMode === 'streamed-echo' || replace !== undefined);
  if (!streamedEcho && replace === undefined && malformed === undefined) return { resp: EMPTY_BODY_ANSWERS[phase], ans };
  const common: CommonResponse = {};
  if (streamedEcho) {
    let out = body;
    if (replace !== undefined) out = eos ? Buffer.from(replace) : Buffer.alloc(0);
    common.body_mutation = { streamed_response: { body: out, end_of_stream: eos } };
    ans.streamedBody = { size: out.length, endOfStream: eos };
  } else if (replace !== undefined) {
    // Buffered: the one message carries the replacement. Streamed: the last chunk does, the rest are cleared.
    if (eos || mode === BodySendMode.BUFFERED) {
      common.body_mutation = { body: Buffer.from(replace) };
      ans.bodySize = Buffer.byteLength(replace);
    } else common.body_mutation = { clear_body: true };
  }
  const resp: ProcessingResponse = {};
  placeAnswer(resp, ans, malformed, [phase, { response: common }], ['request_headers', { response: {} }]);
  return { resp, ans };
}

/** The response-headers answer: the served-endpoint report, the went-into marker, the echo (per the profile). */
export function responseHeadersAnswer(
  cfg: Pick<MockEppConfig, 'append' | 'responseHeadersAnswer'>,
  h: NonNullable<ProcessingRequest['response_headers']>,
  md: Record<string, Json> | undefined,
  malformed: MalformedKind | undefined,
): Answer {
  const r = cfg.responseHeadersAnswer;
  const set: HeaderValueOption[] = [];
  const setLog: Record<string, string> = {};
  const opt = (k: string, v: string) => {
    set.push(headerOption(k, v, cfg.append));
    setLog[k] = setLog[k] === undefined ? v : `${setLog[k]},${v}`;
  };
  if (r.servedEndpoint) {
    // As the lightweight EPP: what this message's metadata says was served, or why not.
    const lb = md?.[DESTINATION_ENDPOINT_NAMESPACE];
    const served = lb && typeof lb === 'object' && !Array.isArray(lb) ? (lb as Record<string, Json>)[SERVED_ENDPOINT_KEY] : undefined;
    opt(CONFORMANCE_SERVED_HEADER, typeof served === 'string' ? served : lb === undefined ? 'fail: missing envoy lb metadata' : 'fail: missing destination endpoint served metadata');
  }
  if (r.wentInto) opt(WENT_INTO_RESP_HEADERS, 'true');
  if (r.echo) for (const hv of h.headers?.headers ?? []) opt(hv.key, headerValueText(hv));
  const common: CommonResponse = set.length > 0 ? { header_mutation: { set_headers: set } } : {};
  return placed('response_headers', { response: common }, malformed, set.length > 0 ? setLog : undefined);
}

/** A trailers answer (an empty header mutation). */
export function trailersAnswer(phase: 'request_trailers' | 'response_trailers', malformed: MalformedKind | undefined): Answer {
  return placed(phase, { header_mutation: {} }, malformed);
}

/** The answer of a phase that carries nothing but its own (possibly malformed) placement. */
function placed(phase: 'response_headers' | 'request_trailers' | 'response_trailers', answer: object, malformed: MalformedKind | undefined, setLog?: Record<string, string>): Answer {
  const resp: ProcessingResponse = {};
  const ans: Answer['ans'] = { kind: phase };
  if (setLog) ans.setHeaders = setLog;
  placeAnswer(resp, ans, malformed, [phase, answer], ['request_headers', { response: {} }]);
  return { resp, ans };
}

/** An ImmediateResponse (rule `immediate`, no endpoint, body too large). */
export function immediateAnswer(f: ImmediateFault, append: FidelitySwitches['append']): Answer {
  const headers: HeaderMutation | undefined = f.headers ? { set_headers: Object.entries(f.headers).map(([k, v]) => headerOption(k, v, append)) } : undefined;
  const imm: NonNullable<ProcessingResponse['immediate_response']> = { status: { code: f.status } };
  if (headers) imm.headers = headers;
  if (f.body !== undefined) imm.body = Buffer.from(f.body);
  if (f.details !== undefined) imm.details = f.details;
  return { resp: { immediate_response: imm }, ans: { kind: 'immediate_response', status: f.status, bodySize: imm.body?.length ?? 0 } };
}
