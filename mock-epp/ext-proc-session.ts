// One ext_proc stream: receives the phases, decides the pick (rules, directives, subset
// hint, conformance header, picker), answers every phase in order, applies faults, and
// journals everything. Messages are handled strictly in order; a delay holds the queue.
import { createHash, hash as oneShotHash, type Hash } from 'node:crypto';
import { constants as h2 } from 'node:http2';
import type { Logger } from '../core/logger.ts';
import { headerMapToObject, headerValueText, rawHeader } from '../core/headers.ts';
import type { Json } from '../core/proto-struct.ts';
import { toProtoStruct, fromProtoStruct } from '../core/proto-struct.ts';
import {
  BodySendMode,
  CONFORMANCE_SELECTION_HEADER,
  DESTINATION_ENDPOINT_HEADER,
  DESTINATION_ENDPOINT_NAMESPACE,
  SERVED_ENDPOINT_KEY,
  SUBSET_HINT_KEY,
  SUBSET_HINT_NAMESPACE,
  type CommonResponse,
  type HeaderMutation,
  type HeaderValueOption,
  type HttpBody,
  type ProcessingRequest,
  type ProcessingResponse,
  type ProtoStruct,
} from '../core/proto.ts';
import type { Journal, JournalAnswer, JournalBody, JournalEntry, JournalPhase, StreamEnd } from './journal.ts';
import {
  BODY_MODE_NAMES,
  parseGrpcCode,
  type MalformedKind,
  type MockEppConfig,
  type Phase,
  type RuleAction,
} from './mock-epp-config.ts';
import type { FidelitySwitches } from './fidelity-profiles.ts';
import type { GrpcServerCall } from './grpc-transport.ts';
import type { MockEppMetrics } from './mock-epp-metrics.ts';
import type { Picker } from './pickers.ts';
import { firstMatch, modelOf, sampleDelayMs, type CompiledRule } from './rules.ts';

/** Everything a stream needs from the server, captured at stream open (config swaps do not affect open streams). */
export interface ConfigState {
  config: MockEppConfig;
  rules: CompiledRule[];
  picker: Picker;
  /** Whether a rule or the picker reads the `model` of a JSON body / anything of the body. */
  needsModel: boolean;
  needsBody: boolean;
  /** Streams opened under this config (rule ordinals count from here). */
  ordinal: number;
}

export interface SessionEnv {
  state: ConfigState;
  journal: Journal;
  metrics: MockEppMetrics;
  logger: Logger;
  nextId: () => number;
  onClosed: (s: ExtProcSession) => void;
}

/** Marker the wrapped deserializer yields for bytes that are not a ProcessingRequest. */
export interface Undecodable {
  undecodable: string;
  size: number;
}

export type ExtProcCall = GrpcServerCall<ProcessingResponse>;

const DIRECTIVE_PREFIX = 'x-eppkit-';
const ECHO_SET_HEADER = 'x-echo-set-header';
const CONFORMANCE_SERVED_HEADER = 'x-conformance-test-served-endpoint';
const HEADER_MODE_VALUES: Record<string, number> = { DEFAULT: 0, SEND: 1, SKIP: 2 };
const WENT_INTO_RESP_HEADERS = 'x-went-into-resp-headers';
/** HeaderValueOption.AppendAction OVERWRITE_IF_EXISTS_OR_ADD. */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

/** A set_headers entry in the form the profile's `append` switch names (always raw_value only). */
export function headerOption(key: string, value: string, form: FidelitySwitches['append']): HeaderValueOption {
  const o: HeaderValueOption = { header: rawHeader(key, value) };
  if (form === 'bool-value') o.append = { value: false };
  else if (form === 'append-action') o.append_action = OVERWRITE_IF_EXISTS_OR_ADD;
  return o;
}

type Fault =
  | { kind: 'hang' }
  | { kind: 'close' }
  | { kind: 'reset' }
  | { kind: 'grpc-error'; code: number; message: string }
  | { kind: 'immediate'; status: number; headers?: Record<string, string>; body?: string; details?: string };

class StopProcessing {
  readonly stop = true;
}
const STOP = new StopProcessing();

function bodyModeName(n: number): string {
  return BODY_MODE_NAMES[n] ?? `UNKNOWN(${n})`;
}

function summarizeBody(buf: Buffer, firstBytes: number, sha: string): JournalBody {
  const head = buf.subarray(0, firstBytes);
  return { size: buf.length, sha256: sha, firstBytes: head.toString('utf8'), firstBytesBase64: head.toString('base64') };
}

// Streams started in the same millisecond share one timestamp string.
let isoMs = 0;
let isoText = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

const EMPTY = Buffer.alloc(0);
/** A bytes field as a Buffer: decoded messages give an empty array for unset bytes. */
function bytesOf(x: Uint8Array | readonly number[] | undefined | null): Buffer {
  if (Buffer.isBuffer(x)) return x;
  if (!x || x.length === 0) return EMPTY;
  return Buffer.from(x as Uint8Array);
}

function sha256(buf: Buffer): string {
  // The one-shot form is much cheaper than createHash() for the small bodies of most requests.
  return oneShotHash('sha256', buf, 'hex');
}

/**
 * Size, sha256 and first bytes of a body seen in several messages. A one-message body (the
 * common case) is hashed once: its per-message digest is also the whole body's.
 */
class BodyDigest {
  size = 0;
  #messages = 0;
  #first: Buffer | undefined;
  #firstSha = '';
  #hash: Hash | undefined;
  #head: Buffer[] = [];
  #headBytes = 0;
  readonly #limit: number;
  constructor(firstBytes: number) {
    this.#limit = firstBytes;
  }
  #firstSummary: JournalBody | undefined;
  /** Adds one message's bytes; returns that message's journal summary. */
  add(body: Buffer): JournalBody {
    const sha = sha256(body);
    const one = summarizeBody(body, this.#limit, sha);
    if (this.#messages === 0) this.#firstSummary = one;
    this.size += body.length;
    if (++this.#messages === 1) {
      this.#first = body;
      this.#firstSha = sha;
    } else {
      if (!this.#hash) this.#hash = createHash('sha256').update(this.#first ?? Buffer.alloc(0));
      this.#first = undefined;
      this.#hash.update(body);
    }
    const want = this.#limit - this.#headBytes;
    if (want > 0 && body.length > 0) {
      const part = Buffer.from(body.subarray(0, want));
      this.#head.push(part);
      this.#headBytes += part.length;
    }
    return one;
  }
  get seen(): boolean {
    return this.#messages > 0;
  }
  summary(): JournalBody {
    // One message: the whole body's summary is that message's (shared, not rebuilt).
    if (this.#messages === 1 && this.#firstSummary) return this.#firstSummary;
    const h = this.#head.length === 1 ? (this.#head[0] as Buffer) : Buffer.concat(this.#head);
    const sha = this.#hash ? this.#hash.digest('hex') : this.#firstSha;
    this.#first = undefined;
    return { size: this.size, sha256: sha, firstBytes: h.toString('utf8'), firstBytesBase64: h.toString('base64') };
  }
}

function metadataToJson(md: ProcessingRequest['metadata_context']): Record<string, Json> | undefined {
  const fm = md?.filter_metadata;
  if (!fm) return undefined;
  const out: Record<string, Json> = {};
  for (const [ns, s] of Object.entries(fm)) out[ns] = fromProtoStruct(s);
  return out;
}

function lbMetadata(value: string): ProtoStruct {
  return toProtoStruct({ [DESTINATION_ENDPOINT_NAMESPACE]: { [DESTINATION_ENDPOINT_HEADER]: value } });
}

/** The subset hint as a list of strings (a list value, or one comma-separated string). */
function subsetList(v: Json | undefined): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string').map((s) => s.trim());
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return [];
}

/** Parses `x-eppkit-*` request headers into an action (directives win over a matched rule). */
export function directivesToAction(headers: Readonly<Record<string, string>>): { action: RuleAction; seen: Record<string, string>; problems: string[] } {
  const seen: Record<string, string> = {};
  const problems: string[] = [];
  for (const [k, v] of Object.entries(headers)) if (k.startsWith(DIRECTIVE_PREFIX)) seen[k] = v;
  const action: RuleAction = {};
  if (Object.keys(seen).length === 0) return { action, seen, problems };
  const phaseRaw = seen['x-eppkit-phase'];
  let phase: Phase = 'request_headers';
  if (phaseRaw !== undefined) {
    const p = phaseRaw.trim().replace(/-/g, '_');
    if (['request_headers', 'request_body', 'request_trailers', 'response_headers', 'response_body', 'response_trailers'].includes(p)) phase = p as Phase;
    else problems.push(`x-eppkit-phase: unknown phase '${phaseRaw}'`);
  }
  const isTrue = (v: string | undefined) => v !== undefined && /^(true|1|yes)$/i.test(v.trim());
  const delay = seen['x-eppkit-delay-ms'];
  if (delay !== undefined) {
    const ms = Number(delay);
    if (Number.isFinite(ms) && ms >= 0) action.delay = { ms: Math.round(ms), phase };
    else problems.push(`x-eppkit-delay-ms: not a number of milliseconds '${delay}'`);
  }
  const imm = seen['x-eppkit-immediate'];
  if (imm !== undefined) {
    const status = Number(imm);
    if (Number.isInteger(status) && status >= 0 && status <= 999) action.immediate = { status, phase };
    else problems.push(`x-eppkit-immediate: not an HTTP status '${imm}'`);
  }
  const ge = seen['x-eppkit-grpc-error'];
  if (ge !== undefined) {
    const code = parseGrpcCode(ge);
    if (code !== undefined) action.grpcError = { code, message: `x-eppkit-grpc-error: ${ge}`, phase };
    else problems.push(`x-eppkit-grpc-error: not a gRPC status '${ge}'`);
  }
  if (isTrue(seen['x-eppkit-hang'])) action.hang = { phase };
  if (isTrue(seen['x-eppkit-reset'])) action.reset = { phase };
  if (isTrue(seen['x-eppkit-close'])) action.close = { phase };
  const ep = seen['x-eppkit-endpoint'];
  if (ep !== undefined) action.endpoint = ep;
  return { action, seen, problems };
}

type AnswerKey = 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';

/**
 * Puts an answer under its own phase, or, when a rule asks for a malformed answer, under a
 * wrong phase or under none (an empty oneof), and says so in the journal entry.
 */
function placeAnswer(
  resp: ProcessingResponse,
  ans: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'>,
  malformed: MalformedKind | undefined,
  right: [AnswerKey, object],
  wrong: [AnswerKey, object],
): void {
  const [key, value] = malformed === 'wrong-phase' ? wrong : right;
  if (malformed === 'empty-oneof') ans.kind = 'none';
  else {
    (resp as Record<string, unknown>)[key] = value;
    ans.kind = key;
  }
  if (malformed) ans.malformed = malformed;
}

export class ExtProcSession {
  readonly entry: JournalEntry;
  readonly #call: ExtProcCall;
  readonly #env: SessionEnv;
  readonly #cfg: MockEppConfig;
  readonly #ordinal: number;
  readonly #t0 = performance.now();

  #queue: Array<ProcessingRequest | Undecodable> = [];
  #busy = false;
  #clientHalfClosed = false;
  #finished = false;
  #hung = false;
  #timers = new Set<NodeJS.Timeout>();
  #wake: (() => void) | undefined;

  #reqMode = -1;
  #respMode = -1;
  #waitsForHeadersAnswer = true;
  #gotRequestHeaders = false;
  #gotResponseHeaders = false;
  #headersAnswered = false;
  #holding = false;
  #requestHeaders: Record<string, string> = {};
  #reqBodyChunks: Buffer[] = [];
  #heldBodyMessages: HttpBody[] = [];
  #reqDigest: BodyDigest;
  #reqBodyEnded = false;
  #respDigest: BodyDigest;

  #action: RuleAction = {};
  #pickValue: string | undefined;
  /** The decided pick, journaled (and counted, when the picker made it) only once it is sent. */
  #pick: NonNullable<JournalEntry['pick']> | undefined;
  #pickedEndpoint: string | undefined;
  #noEndpoint: { details: string } | undefined;
  #deadlockNoted = false;
  /** Body bytes already answered before the headers (bodyAnswerBeforeHeaders): not echoed twice. */
  #earlyAnsweredBytes = 0;
  #firedPhases = new Set<Phase>();

  constructor(call: ExtProcCall, env: SessionEnv) {
    this.#call = call;
    this.#env = env;
    this.#cfg = env.state.config;
    this.#ordinal = ++env.state.ordinal;
    this.#reqDigest = new BodyDigest(this.#cfg.journal.firstBytes);
    this.#respDigest = new BodyDigest(this.#cfg.journal.firstBytes);
    this.entry = {
      id: env.nextId(),
      startedAt: isoNow(),
      peer: call.peer,
      bodyMode: { request: '', response: '' },
      phases: [],
      metadataContext: {},
      profile: this.#cfg.profile,
      answers: [],
      problems: [],
    };
    env.metrics.streamsTotal++;
    env.metrics.streamsActive++;
    env.journal.open(this.entry);
    call.on('message', (m: ProcessingRequest | Undecodable) => this.#enqueue(m));
    call.on('halfClose', () => {
      this.#clientHalfClosed = true;
      if (!this.#busy) this.#maybeComplete();
    });
    call.on('cancelled', (reason: number | string) => {
      const why = typeof reason === 'number' ? `RST_STREAM ${reason}` : reason;
      if (this.#holding && !this.#headersAnswered && !this.#reqDigest.seen && !this.#finished) this.#noteDeadlock('gave up');
      this.#finish('client-cancelled', undefined, `${this.#hung ? 'cancelled while hanging, ' : ''}${why}`);
    });
    call.on('refused', (reason: string) => {
      // The transport refused a frame (over the receive limit, or compressed) and ended the call itself.
      this.#problem('refused-by-grpc', reason);
      this.#finish('bad-input', 8, reason);
    });
  }

  #ms(): number {
    return Math.round((performance.now() - this.#t0) * 1000) / 1000;
  }

  #enqueue(m: ProcessingRequest | Undecodable): void {
    if (this.#finished || this.#hung) return;
    this.#queue.push(m);
    if (!this.#busy) this.#drain();
  }

  #drain(): void {
    while (this.#queue.length > 0 && !this.#finished && !this.#hung) {
      const m = this.#queue.shift() as ProcessingRequest | Undecodable;
      let r: void | Promise<void>;
      try {
        r = this.#handle(m, performance.now());
      } catch (e) {
        if (!(e instanceof StopProcessing)) this.#internalError(e);
        return;
      }
      if (r instanceof Promise) {
        this.#busy = true;
        r.then(
          () => {
            this.#busy = false;
            this.#drain();
          },
          (e: unknown) => {
            this.#busy = false;
            if (e instanceof StopProcessing) return;
            this.#internalError(e);
          },
        );
        return;
      }
    }
    if (this.#queue.length === 0) this.#maybeComplete();
  }

  #internalError(e: unknown): void {
    this.#env.logger.error({ stream: this.entry.id, err: e }, 'mock EPP internal error while handling a stream');
    this.#problem('internal-error', String((e as Error)?.message ?? e));
    this.#endWithStatus(13, `mock EPP internal error: ${String((e as Error)?.message ?? e)}`, 'grpc-error');
  }

  #maybeComplete(): void {
    if (!this.#clientHalfClosed || this.#finished || this.#busy || this.#hung) return;
    // The client is done sending. A held headers answer is still owed if the body never ended.
    if (this.entry.phases.length === 0) this.#problem('empty-stream', 'client half-closed without sending a message');
    if (this.#holding && !this.#headersAnswered && this.#gotRequestHeaders) {
      this.#problem('half-close-before-body-end', 'client half-closed before the request body ended');
    }
    this.#call.end();
    this.#finish('completed');
  }

  /**
   * The deadlock the real EPPs produce with a plane that waits for the headers answer before
   * sending the body: recorded once, in words a failing scenario can show as they are.
   */
  #noteDeadlock(how: 'declared' | 'gave up'): void {
    if (this.#deadlockNoted) return;
    this.#deadlockNoted = true;
    const pc = this.entry.protocolConfig;
    const declared = pc
      ? `request_body_mode ${pc.requestBodyMode}, send_body_without_waiting_for_header_response ${pc.sendBodyWithoutWaitingForHeaderResponse}`
      : 'no protocol_config';
    const why =
      this.#reqMode === BodySendMode.NONE
        ? `the request headers did not end the stream but the data plane declared ${declared}, so no body will come`
        : `the data plane declared ${declared}: it waits for the request-headers answer before it sends the body`;
    const tail =
      how === 'declared'
        ? 'neither side can move until the data plane\'s timeout'
        : 'the data plane gave up before sending any body';
    this.#problem(
      'headers-answer-deadlock',
      `DEADLOCK: profile ${this.#cfg.profile} (like the real EPPs) answers the request headers only after the request body has ended; ${why}; ${tail}. Send the body without waiting for the headers answer (Envoy: FULL_DUPLEX_STREAMED).`,
    );
  }

  #problem(reason: string, detail: string): void {
    this.entry.problems.push(`${reason}: ${detail}`);
    this.#env.metrics.badInput.inc(reason);
    this.#env.logger.warn({ stream: this.entry.id, reason, detail }, 'bad input on ext_proc stream');
  }

  /** Bad input: log, count, end the stream with a gRPC status. */
  #badInput(reason: string, detail: string, code = 3 /* INVALID_ARGUMENT */): typeof STOP {
    this.#problem(reason, detail);
    this.#endWithStatus(code, `${reason}: ${detail}`, 'bad-input');
    return STOP;
  }

  #endWithStatus(code: number, details: string, how: StreamEnd): void {
    if (this.#finished) return;
    this.#finish(how, code, details);
    this.#call.end(code, details);
  }

  #finish(how: StreamEnd, grpcCode?: number, detail?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#wake?.();
    this.#queue = [];
    this.#reqBodyChunks = [];
    this.#heldBodyMessages = [];
    const e = this.entry;
    e.endedAt = isoNow();
    e.durationMs = this.#ms();
    e.end = { how };
    if (grpcCode !== undefined) e.end.grpcCode = grpcCode;
    if (detail !== undefined) e.end.detail = detail;
    if (this.#reqDigest.seen) e.requestBody = this.#reqDigest.summary();
    if (this.#respDigest.seen) e.responseBody = this.#respDigest.summary();
    const m = this.#env.metrics;
    m.streamsActive--;
    m.streamEnds.inc(how);
    if (this.#pickedEndpoint) this.#env.state.picker.release?.(this.#pickedEndpoint);
    this.#env.journal.ended(e);
    this.#env.onClosed(this);
  }

  /** Server stopping: end what is still open. */
  abort(): void {
    if (this.#finished) return;
    this.#endWithStatus(14, 'mock EPP shutting down', 'server-stopped');
  }

  // ---- message handling ----

  #handle(m: ProcessingRequest | Undecodable, tIn: number): void | Promise<void> {
    if ('undecodable' in m) {
      this.#badInput('undecodable-message', `${m.size} bytes that are not a ProcessingRequest (${m.undecodable})`);
      return;
    }
    if (this.#reqMode < 0) this.#setModes(m);
    const phase = m.request;
    if (phase === undefined) {
      this.#badInput('empty-request', 'ProcessingRequest with no phase set');
      return;
    }
    this.#env.metrics.phases.inc(phase);
    const jp: JournalPhase = { phase, atMs: this.#ms() };
    const md = metadataToJson(m.metadata_context);
    if (md) {
      jp.metadataContext = md;
      Object.assign(this.entry.metadataContext, md);
      const served = (md[DESTINATION_ENDPOINT_NAMESPACE] as Record<string, Json> | undefined)?.[SERVED_ENDPOINT_KEY];
      if (typeof served === 'string') this.entry.servedEndpoint = served;
      const hint = subsetList((md[SUBSET_HINT_NAMESPACE] as Record<string, Json> | undefined)?.[SUBSET_HINT_KEY]);
      if (hint !== undefined && this.entry.subsetHint === undefined) this.entry.subsetHint = hint;
    }
    if (m.attributes && Object.keys(m.attributes).length > 0) {
      jp.attributes = {};
      for (const [k, s] of Object.entries(m.attributes)) jp.attributes[k] = fromProtoStruct(s);
    }
    if (m.observability_mode) jp.observabilityMode = true;
    this.entry.phases.push(jp);

    switch (phase) {
      case 'request_headers': {
        const h = m.request_headers ?? {};
        jp.headers = headerMapToObject(h.headers);
        jp.endOfStream = h.end_of_stream === true;
        if (this.#gotRequestHeaders) return void this.#badInput('second-request-headers', 'request_headers received twice');
        if (this.#gotResponseHeaders) return void this.#badInput('phase-out-of-order', 'request_headers after response_headers');
        this.#gotRequestHeaders = true;
        this.#requestHeaders = jp.headers;
        this.entry.requestHeaders = jp.headers;
        const model = jp.headers['x-gateway-model-name'];
        if (model !== undefined) this.entry.model = model;
        if (m.observability_mode) return;
        const bodyFollows = !jp.endOfStream && this.#reqMode !== BodySendMode.NONE;
        const hold = this.#cfg.holdHeaders;
        // The real EPPs look only at end_of_stream: whatever the body mode, no answer until the body ends.
        this.#holding =
          hold === 'until-body-end'
            ? !jp.endOfStream
            : bodyFollows &&
              (hold === 'always' ||
                (hold === 'auto' && !this.#waitsForHeadersAnswer) ||
                (hold === 'when-needed' && !this.#waitsForHeadersAnswer && this.#env.state.needsBody));
        if (!bodyFollows && !this.#holding) this.#reqBodyEnded = true;
        if (this.#holding) {
          // Known in advance: this client will not send the body before the headers answer.
          if (this.#waitsForHeadersAnswer || this.#reqMode === BodySendMode.NONE) this.#noteDeadlock('declared');
          return;
        }
        this.#decide(undefined);
        return this.#answerRequestHeaders(tIn);
      }
      case 'request_body': {
        const b = m.request_body ?? {};
        const body = bytesOf(b.body);
        jp.endOfStream = b.end_of_stream === true || b.end_of_stream_without_message === true;
        if (!this.#gotRequestHeaders) return void this.#badInput('body-before-headers', 'request_body before request_headers');
        if (this.#reqBodyEnded) return void this.#badInput('body-after-end', 'request_body after the request body ended');
        jp.body = this.#reqDigest.add(body);
        if (this.#reqDigest.size > this.#cfg.maxBodyBytes) return this.#tooLarge('request', tIn);
        if (jp.endOfStream) this.#reqBodyEnded = true;
        if (m.observability_mode) return;
        if (this.#holding) {
          this.#reqBodyChunks.push(body);
          if (!this.#reqBodyEnded && this.#cfg.bodyAnswerBeforeHeaders) {
            // Opt-in defect of the lightweight EPP: an earlier chunk answered before the headers.
            this.#problem('out-of-order-by-profile', 'request_body answered before the request-headers answer (bodyAnswerBeforeHeaders)');
            this.#earlyAnsweredBytes += body.length;
            return this.#sendBody('request_body', b, body, tIn);
          }
          this.#heldBodyMessages.push(b);
          if (!this.#reqBodyEnded) return;
          return this.#releaseHeld(tIn, false);
        }
        return this.#answerBody('request_body', b, body, tIn);
      }
      case 'request_trailers': {
        jp.headers = headerMapToObject(m.request_trailers?.trailers);
        if (!this.#gotRequestHeaders) return void this.#badInput('trailers-before-headers', 'request_trailers before request_headers');
        if (m.observability_mode) return;
        const wasEnded = this.#reqBodyEnded;
        this.#reqBodyEnded = true;
        if (this.#cfg.trailers === 'stall') {
          // The real EPPs ignore trailers: a body they still wait for never ends for them.
          const held = this.#holding && !this.#headersAnswered && !wasEnded;
          this.#problem(
            'trailers-stall',
            `request_trailers not answered (profile ${this.#cfg.profile}, trailers: stall, like the real EPPs)${held ? '; the body never ended with end_of_stream, so the held request-headers answer never comes' : ''}`,
          );
          return;
        }
        if (this.#holding && !this.#headersAnswered && !wasEnded) return this.#releaseHeld(tIn, true);
        return this.#answerTrailers('request_trailers', tIn);
      }
      case 'response_headers': {
        const h = m.response_headers ?? {};
        jp.headers = headerMapToObject(h.headers);
        jp.endOfStream = h.end_of_stream === true;
        if (this.#gotResponseHeaders) return void this.#badInput('second-response-headers', 'response_headers received twice');
        this.#gotResponseHeaders = true;
        if (m.observability_mode) return;
        if (!this.#headersAnswered && this.#gotRequestHeaders) {
          this.#problem('phase-out-of-order', 'response_headers while the request headers answer was still owed');
        }
        return this.#answerResponseHeaders(h, md, tIn);
      }
      case 'response_body': {
        const b = m.response_body ?? {};
        const body = bytesOf(b.body);
        jp.endOfStream = b.end_of_stream === true || b.end_of_stream_without_message === true;
        jp.body = this.#respDigest.add(body);
        if (this.#respDigest.size > this.#cfg.maxBodyBytes) return this.#tooLarge('response', tIn);
        if (m.observability_mode) return;
        return this.#answerBody('response_body', b, body, tIn);
      }
      case 'response_trailers': {
        jp.headers = headerMapToObject(m.response_trailers?.trailers);
        if (m.observability_mode) return;
        if (this.#cfg.trailers === 'stall') {
          this.#problem('trailers-stall', `response_trailers not answered (profile ${this.#cfg.profile}, trailers: stall, like the real EPPs)`);
          return;
        }
        return this.#answerTrailers('response_trailers', tIn);
      }
    }
  }

  #setModes(m: ProcessingRequest): void {
    const pc = m.protocol_config;
    const def = BODY_MODE_NAMES.indexOf(this.#cfg.defaultBodyMode);
    if (pc) {
      this.#reqMode = pc.request_body_mode ?? 0;
      this.#respMode = pc.response_body_mode ?? 0;
      this.entry.protocolConfig = {
        requestBodyMode: bodyModeName(this.#reqMode),
        responseBodyMode: bodyModeName(this.#respMode),
        sendBodyWithoutWaitingForHeaderResponse: pc.send_body_without_waiting_for_header_response === true,
      };
      // Envoy sends the body only after the headers answer, except in these two cases.
      this.#waitsForHeadersAnswer = !(this.#reqMode === BodySendMode.FULL_DUPLEX_STREAMED || pc.send_body_without_waiting_for_header_response === true);
    } else {
      this.#reqMode = def;
      this.#respMode = def;
      // Clients without protocol_config (NGF shim, eppkit proxies) send headers then body at once.
      this.#waitsForHeadersAnswer = false;
    }
    this.entry.bodyMode = { request: bodyModeName(this.#reqMode), response: bodyModeName(this.#respMode) };
  }

  /** Decides rule, directives and the pick, once, when the headers answer is due. */
  #decide(body: Buffer | undefined): void {
    const st = this.#env.state;
    const headers = this.#requestHeaders;
    // Parsing the body costs; only when a rule or the picker looks at the model.
    const model = body !== undefined && st.needsModel ? modelOf(body) : undefined;
    const rule = firstMatch(st.rules, { headers, ordinal: this.#ordinal, body, model });
    let action: RuleAction = rule ? rule.action : {};
    if (rule) this.entry.rule = rule.name;
    let source: 'picker' | 'conformance-header' | 'rule' | 'directive' = rule?.action.endpoint !== undefined ? 'rule' : 'picker';
    if (this.#cfg.directives) {
      const d = directivesToAction(headers);
      if (Object.keys(d.seen).length > 0) {
        this.entry.directives = d.seen;
        for (const p of d.problems) this.#problem('bad-directive', p);
        if (d.action.endpoint !== undefined) source = 'directive';
        action = { ...action, ...d.action };
      }
    }
    this.#action = action;
    if (action.endpoint !== undefined) {
      const list = Array.isArray(action.endpoint) ? action.endpoint : [action.endpoint];
      this.#pickValue = list.join(',');
      this.#pick = { value: this.#pickValue, endpoints: list, source };
      return;
    }
    // The pool, narrowed by the subset hint and the conformance header.
    let candidates: readonly string[] = this.#cfg.endpoints;
    const hint = this.entry.subsetHint;
    if (hint !== undefined) {
      candidates = candidates.length > 0 ? candidates.filter((c) => hint.includes(c)) : hint;
      if (candidates.length === 0) {
        this.#noEndpoint = { details: 'no pool endpoint is in the subset hint' };
        return;
      }
    }
    const sel = headers[CONFORMANCE_SELECTION_HEADER];
    const selWanted = sel?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
    // An empty selection header: the lightweight EPP ignores it (whole pool), the full EPP finds no one eligible.
    if (sel !== undefined && !(selWanted.length === 0 && this.#cfg.emptySelection === 'whole-pool')) {
      const wanted = selWanted;
      candidates = candidates.filter((c) => wanted.some((w) => w === c || (!w.includes(':') && c.startsWith(`${w}:`)) || (w.startsWith('[') && c === w)));
      source = 'conformance-header';
      if (candidates.length === 0) {
        this.#noEndpoint = { details: `no pool endpoint matches ${CONFORMANCE_SELECTION_HEADER}: ${sel}` };
        return;
      }
    }
    if (candidates.length === 0) {
      this.#noEndpoint = { details: 'the pool has no endpoints' };
      return;
    }
    const order = st.picker.order({ candidates, headers, model });
    const list = order.slice(0, 1 + this.#cfg.fallbacks);
    this.#pickValue = list.join(',');
    this.#pickedEndpoint = list[0];
    this.#pick = { value: this.#pickValue, endpoints: list, source };
  }

  /** The body has ended while the headers answer was held: decide, answer headers, then the held body. */
  #releaseHeld(tIn: number, byTrailers: boolean): void | Promise<void> {
    const body = this.#reqBodyChunks.length === 1 ? this.#reqBodyChunks[0] : Buffer.concat(this.#reqBodyChunks);
    this.#reqBodyChunks = [];
    this.#decide(body);
    const msgs = this.#heldBodyMessages;
    this.#heldBodyMessages = [];
    const steps: Array<() => void | Promise<void>> = [() => this.#answerRequestHeaders(tIn)];
    if (this.#reqMode === BodySendMode.FULL_DUPLEX_STREAMED && this.#cfg.bodyAnswer === 'streamed-echo') {
      // One streamed answer with the whole body, as the full EPP does after buffering.
      const last = msgs[msgs.length - 1];
      const eos = !byTrailers && last !== undefined && (last.end_of_stream === true || last.end_of_stream_without_message === true);
      const rest = (body ?? Buffer.alloc(0)).subarray(this.#earlyAnsweredBytes);
      steps.push(() => this.#answerBody('request_body', { end_of_stream: eos }, rest, tIn));
    } else {
      for (const b of msgs) steps.push(() => this.#answerBody('request_body', b, bytesOf(b.body), tIn));
    }
    if (byTrailers) steps.push(() => this.#answerTrailers('request_trailers', tIn));
    return this.#runSteps(steps, 0);
  }

  /** Runs answer steps in order; synchronously until one has to wait (a delay). */
  #runSteps(steps: Array<() => void | Promise<void>>, from: number): void | Promise<void> {
    for (let i = from; i < steps.length; i++) {
      if (this.#finished || this.#hung) return;
      const r = (steps[i] as () => void | Promise<void>)();
      if (r instanceof Promise) return r.then(() => this.#runSteps(steps, i + 1));
    }
  }

  #tooLarge(which: 'request' | 'response', tIn: number): void {
    this.#problem('body-too-large', `${which} body over maxBodyBytes (${this.#cfg.maxBodyBytes})`);
    this.#reqBodyChunks = [];
    this.#heldBodyMessages = [];
    this.#sendImmediate({ kind: 'immediate', status: 413, body: `${which} body larger than ${this.#cfg.maxBodyBytes} bytes`, details: 'eppkit_mock_body_too_large' }, tIn);
  }

  // ---- faults ----

  #faultFor(phase: Phase): Fault | undefined {
    const a = this.#action;
    const at = (x: { phase: Phase } | undefined) => x !== undefined && x.phase === phase;
    if (at(a.hang)) return { kind: 'hang' };
    if (at(a.reset)) return { kind: 'reset' };
    if (at(a.close)) return { kind: 'close' };
    if (a.grpcError && a.grpcError.phase === phase) {
      return { kind: 'grpc-error', code: parseGrpcCode(a.grpcError.code) ?? 13, message: a.grpcError.message ?? 'injected by mock EPP rule' };
    }
    if (a.immediate && a.immediate.phase === phase) {
      const f: Fault = { kind: 'immediate', status: a.immediate.status };
      if (a.immediate.headers) f.headers = a.immediate.headers;
      if (a.immediate.body !== undefined) f.body = a.immediate.body;
      if (a.immediate.details !== undefined) f.details = a.immediate.details;
      return f;
    }
    return undefined;
  }

  #malformedFor(phase: Phase): MalformedKind | undefined {
    const m = this.#action.malformed;
    if (m === undefined) return undefined;
    if (typeof m === 'string') return phase === 'request_headers' ? m : undefined;
    return m.phase === phase ? m.kind : undefined;
  }

  /** Applies the delay and faults of a phase (once per phase). Returns true when the answer must not be sent. */
  #applyFaults(phase: Phase, tIn: number): boolean | Promise<boolean> {
    if (this.#firedPhases.has(phase)) return false;
    this.#firedPhases.add(phase);
    const d = this.#action.delay;
    if (d && d.phase === phase) {
      const ms = sampleDelayMs(d);
      return this.#sleep(ms).then(() => this.#terminalFault(phase, tIn));
    }
    return this.#terminalFault(phase, tIn);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#timers.delete(t);
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#timers.add(t);
      // A cancelled stream wakes the sleeper so nothing more is done for it.
      this.#wake = () => reject(STOP);
    });
  }

  #terminalFault(phase: Phase, tIn: number): boolean {
    if (this.#finished) throw STOP;
    const f = this.#faultFor(phase);
    if (!f) return false;
    switch (f.kind) {
      case 'hang':
        this.#hung = true;
        this.#env.metrics.answers.inc('hang');
        return true;
      case 'reset':
        this.#reset();
        return true;
      case 'close':
        this.#call.end();
        this.#env.metrics.answers.inc('close');
        this.#finish('closed-ok', 0, `closed by rule at ${phase}`);
        return true;
      case 'grpc-error':
        this.#env.metrics.answers.inc('grpc_error');
        this.#endWithStatus(f.code, f.message, 'grpc-error');
        return true;
      case 'immediate':
        this.#sendImmediate(f, tIn);
        return true;
    }
  }

  #reset(): void {
    this.#env.metrics.answers.inc('reset');
    // The call is marked ended before it goes, so no 'cancelled' follows; the journal says what the transport did.
    const what = this.#call.reset(h2.NGHTTP2_INTERNAL_ERROR);
    this.#finish('reset', undefined, what);
  }

  #sendImmediate(f: Extract<Fault, { kind: 'immediate' }>, tIn: number): void {
    const headers: HeaderMutation | undefined = f.headers
      ? { set_headers: Object.entries(f.headers).map(([k, v]) => headerOption(k, v, this.#cfg.append)) }
      : undefined;
    const imm: NonNullable<ProcessingResponse['immediate_response']> = { status: { code: f.status } };
    if (headers) imm.headers = headers;
    if (f.body !== undefined) imm.body = Buffer.from(f.body);
    if (f.details !== undefined) imm.details = f.details;
    this.#write({ immediate_response: imm }, tIn, { kind: 'immediate_response', status: f.status, bodySize: imm.body?.length ?? 0 });
    this.#call.end();
    this.#finish('immediate-response', 0, `status ${f.status}`);
  }

  // ---- answers ----

  #write(resp: ProcessingResponse, tIn: number, a: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'>): void {
    if (this.#finished) return;
    const now = performance.now();
    const serviceTimeMs = Math.round((now - tIn) * 1000) / 1000;
    const ans = a as JournalAnswer;
    ans.atMs = this.#ms();
    ans.serviceTimeMs = serviceTimeMs;
    this.entry.answers.push(ans);
    this.#env.metrics.answers.inc(a.kind);
    this.#env.metrics.observeServiceTime(serviceTimeMs);
    this.#call.write(resp);
  }

  /** Runs the phase's faults (delay, error, hang, ...), then `send` unless a fault ended the stream. */
  #afterFaults(phase: Phase, tIn: number, send: () => void): void | Promise<void> {
    const r = this.#applyFaults(phase, tIn);
    if (r === true) return;
    if (r === false) return send();
    return r.then((stop) => {
      if (!stop) send();
    });
  }

  #answerRequestHeaders(tIn: number): void | Promise<void> {
    return this.#afterFaults('request_headers', tIn, () => this.#sendRequestHeaders(tIn));
  }

  #sendRequestHeaders(tIn: number): void {
    this.#headersAnswered = true;
    if (this.#noEndpoint) {
      const ne = this.#cfg.noEndpoint;
      if ('grpcStatus' in ne) {
        // The lightweight EPP ends the stream: the data plane's failure mode decides.
        this.#env.metrics.answers.inc('grpc_error');
        this.entry.noEndpoint = this.#noEndpoint.details;
        this.#endWithStatus(ne.grpcStatus, `${ne.message ?? 'no endpoint'}: ${this.#noEndpoint.details}`, 'grpc-error');
        return;
      }
      this.entry.noEndpoint = this.#noEndpoint.details;
      this.#sendImmediate({ kind: 'immediate', status: ne.status, body: this.#noEndpoint.details, details: 'eppkit_mock_no_endpoint' }, tIn);
      return;
    }
    const a = this.#action;
    const malformed = this.#malformedFor('request_headers');
    let value = this.#pickValue;
    if (malformed === 'garbage-endpoint') value = 'not-an-endpoint:garbage';
    if (malformed === 'ipv6-endpoint') value = `[::1]:${(this.#pickValue ?? ':8000').split(',')[0]?.split(':').pop() || '8000'}`;
    const pick = malformed === 'garbage-endpoint' || malformed === 'ipv6-endpoint' ? { value: value as string, endpoints: [value as string], source: 'malformed' as const } : this.#pick;
    const set: HeaderValueOption[] = [];
    const setLog: Record<string, string> = {};
    const opt = (k: string, v: string) => {
      set.push(headerOption(k, v, this.#cfg.append));
      setLog[k.toLowerCase()] = v;
    };
    if (this.#cfg.echoRequestHeaders) {
      // The full EPP sends the request headers back (pseudo-headers too) and the body's length.
      for (const [k, v] of Object.entries(this.#requestHeaders)) if (k !== 'content-length') opt(k, v);
      if (this.#reqDigest.seen) opt('content-length', String(this.#reqDigest.size));
    }
    if (value !== undefined) {
      if (malformed === 'value-and-raw-value') {
        set.push({ header: { key: DESTINATION_ENDPOINT_HEADER, value, raw_value: Buffer.from(value) }, append: { value: false } });
        setLog[DESTINATION_ENDPOINT_HEADER] = value;
      } else opt(DESTINATION_ENDPOINT_HEADER, value);
      if (this.#cfg.conformanceEchoHeader) opt(ECHO_SET_HEADER, `${CONFORMANCE_SERVED_HEADER}:${value.split(',')[0] ?? value}`);
    }
    for (const [k, v] of Object.entries(a.setHeaders ?? {})) opt(k, v);
    // append: true (a BoolValue), whatever the profile's form for the others.
    for (const [k, v] of Object.entries(a.appendHeaders ?? {})) {
      set.push({ header: rawHeader(k, v), append: { value: true } });
      setLog[`+${k.toLowerCase()}`] = v;
    }
    const common: CommonResponse = {};
    if (this.#cfg.clearRouteCache) {
      common.clear_route_cache = true;
    }
    if (set.length > 0 || a.removeHeaders?.length) {
      common.header_mutation = {};
      if (set.length > 0) common.header_mutation.set_headers = set;
      if (a.removeHeaders?.length) common.header_mutation.remove_headers = a.removeHeaders.map((h) => h.toLowerCase());
    }
    const resp: ProcessingResponse = {};
    const ans: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'> = { kind: 'request_headers' };
    placeAnswer(resp, ans, malformed, ['request_headers', { response: common }], ['response_headers', { response: common }]);
    if (value !== undefined) {
      resp.dynamic_metadata = lbMetadata(value);
      ans.dynamicMetadata = { [DESTINATION_ENDPOINT_NAMESPACE]: { [DESTINATION_ENDPOINT_HEADER]: value } };
    }
    if (a.modeOverride) {
      const mo = a.modeOverride;
      resp.mode_override = {};
      ans.modeOverride = {};
      const put = (k: keyof NonNullable<ProcessingResponse['mode_override']>, v: string | undefined, table: Record<string, number> | readonly string[]) => {
        if (v === undefined) return;
        (resp.mode_override as Record<string, number>)[k] = Array.isArray(table) ? table.indexOf(v) : (table as Record<string, number>)[v] as number;
        (ans.modeOverride as Record<string, string>)[k] = v;
      };
      put('request_header_mode', mo.requestHeaderMode, HEADER_MODE_VALUES);
      put('response_header_mode', mo.responseHeaderMode, HEADER_MODE_VALUES);
      put('request_body_mode', mo.requestBodyMode, BODY_MODE_NAMES);
      put('response_body_mode', mo.responseBodyMode, BODY_MODE_NAMES);
      put('request_trailer_mode', mo.requestTrailerMode, HEADER_MODE_VALUES);
      put('response_trailer_mode', mo.responseTrailerMode, HEADER_MODE_VALUES);
    }
    if (Object.keys(setLog).length) ans.setHeaders = setLog;
    if (common.header_mutation?.remove_headers) ans.removeHeaders = common.header_mutation.remove_headers;
    if (common.clear_route_cache) ans.clearRouteCache = true;
    this.#write(resp, tIn, ans);
    // Only a pick that went out is journaled and counted (a stream can end before its answer).
    if (pick !== undefined && !this.#finished) {
      this.entry.pick = pick;
      if (this.#pickedEndpoint !== undefined && pick.source !== 'malformed') this.#env.metrics.picks.inc(this.#pickedEndpoint);
    }
  }

  #answerBody(phase: 'request_body' | 'response_body', b: HttpBody, body: Buffer, tIn: number): void | Promise<void> {
    return this.#afterFaults(phase, tIn, () => this.#sendBody(phase, b, body, tIn));
  }

  #sendBody(phase: 'request_body' | 'response_body', b: HttpBody, body: Buffer, tIn: number): void {
    const mode = phase === 'request_body' ? this.#reqMode : this.#respMode;
    const eos = b.end_of_stream === true || b.end_of_stream_without_message === true;
    const replace = phase === 'request_body' ? this.#action.replaceBody : undefined;
    const common: CommonResponse = {};
    const ans: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'> = { kind: phase };
    if (mode === BodySendMode.FULL_DUPLEX_STREAMED && (this.#cfg.bodyAnswer === 'streamed-echo' || replace !== undefined)) {
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
    const malformed = this.#malformedFor(phase);
    const resp: ProcessingResponse = {};
    placeAnswer(resp, ans, malformed, [phase, { response: common }], ['request_headers', { response: {} }]);
    this.#write(resp, tIn, ans);
  }

  #answerResponseHeaders(h: NonNullable<ProcessingRequest['response_headers']>, md: Record<string, Json> | undefined, tIn: number): void | Promise<void> {
    return this.#afterFaults('response_headers', tIn, () => {
      const r = this.#cfg.responseHeadersAnswer;
      const set: HeaderValueOption[] = [];
      const setLog: Record<string, string> = {};
      const opt = (k: string, v: string) => {
        set.push(headerOption(k, v, this.#cfg.append));
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
      this.#writePlaced('response_headers', { response: common }, tIn, set.length > 0 ? setLog : undefined);
    });
  }

  #answerTrailers(phase: 'request_trailers' | 'response_trailers', tIn: number): void | Promise<void> {
    return this.#afterFaults(phase, tIn, () => this.#writePlaced(phase, { header_mutation: {} }, tIn));
  }

  /** Writes the answer of a phase that carries nothing but its own (possibly malformed) placement. */
  #writePlaced(phase: 'response_headers' | 'request_trailers' | 'response_trailers', answer: object, tIn: number, setLog?: Record<string, string>): void {
    const resp: ProcessingResponse = {};
    const ans: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'> = { kind: phase };
    if (setLog) ans.setHeaders = setLog;
    placeAnswer(resp, ans, this.#malformedFor(phase), [phase, answer], ['request_headers', { response: {} }]);
    this.#write(resp, tIn, ans);
  }
}
