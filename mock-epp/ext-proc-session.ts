// One ext_proc stream: receives the phases, keeps the stream's state per direction
// (stream-state.ts), has the pick decided (pick-decision.ts) when the headers answer is due,
// applies the phase's faults (session-faults.ts), sends the answers (session-answers.ts) in
// order, and journals everything (stream-journal.ts). Messages are handled strictly in
// order; a delay holds the queue.
import { constants as h2 } from 'node:http2';
import type { Json } from '../core/proto-struct.ts';
import { fromProtoStruct } from '../core/proto-struct.ts';
import {
  BodySendMode,
  DESTINATION_ENDPOINT_NAMESPACE,
  SERVED_ENDPOINT_KEY,
  SUBSET_HINT_KEY,
  SUBSET_HINT_NAMESPACE,
  type HttpBody,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../core/proto.ts';
import { BodyDigest, bytesOf } from './body-digest.ts';
import type { JournalEntry, JournalPhase, StreamEnd } from './journal.ts';
import type { MockEppConfig, Phase } from './mock-epp-config.ts';
import { decidePick, type PickDecision } from './pick-decision.ts';
import { sampleDelayMs } from './rules.ts';
import { bodyAnswer, immediateAnswer, requestHeadersAnswer, responseHeadersAnswer, trailersAnswer, type Answer } from './session-answers.ts';
import type { ExtProcCall, SessionEnv, Undecodable } from './session-env.ts';
import { delayAt, faultFor, hasFaultAt, malformedFor, type ImmediateFault } from './session-faults.ts';
import { StreamJournal, journalHeaders } from './stream-journal.ts';
import { StreamSleeper } from './stream-sleeper.ts';
import { HeadersAnswer, RequestState, ResponseState, StreamState, bodyModesOf, type BodyModes } from './stream-state.ts';

export type { ConfigState, ExtProcCall, SessionEnv, Undecodable } from './session-env.ts';

class StopProcessing {
  readonly stop = true;
}
const STOP = new StopProcessing();

const PHASE_BIT: Record<Phase, number> = { request_headers: 1, request_body: 2, request_trailers: 4, response_headers: 8, response_body: 16, response_trailers: 32 };

function metadataToJson(md: ProcessingRequest['metadata_context']): Record<string, Json> | undefined {
  const fm = md?.filter_metadata;
  if (!fm) return undefined;
  const out: Record<string, Json> = {};
  for (const [ns, s] of Object.entries(fm)) out[ns] = fromProtoStruct(s);
  return out;
}

/** The subset hint as a list of strings (a list value, or one comma-separated string). */
function subsetList(v: Json | undefined): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string').map((s) => s.trim());
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return [];
}

/** Request body messages answered after the held headers answer. */
interface HeldBody {
  bodies: Array<{ b: HttpBody; bytes: Buffer }>;
  byTrailers: boolean;
  tIn: number;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export class ExtProcSession {
  readonly #call: ExtProcCall;
  readonly #env: SessionEnv;
  readonly #cfg: MockEppConfig;
  readonly #ordinal: number;
  readonly #j: StreamJournal;

  #stream: StreamState = StreamState.Open;
  #req: RequestState = RequestState.AwaitingHeaders;
  #headersAnswer: HeadersAnswer = HeadersAnswer.NotDue;
  #resp: ResponseState = ResponseState.AwaitingHeaders;
  #modes: BodyModes | undefined;

  #queue: Array<ProcessingRequest | Undecodable> = [];
  /** A message's handling is waiting (a delay): the next ones wait in the queue. */
  #busy = false;
  #sleeper: StreamSleeper | undefined;
  /** Phases whose faults have run (they run once per phase), as PHASE_BIT bits. */
  #firedPhases = 0;

  #requestHeaders: Readonly<Record<string, string>> = NO_HEADERS;
  #reqDigest: BodyDigest | undefined;
  #respDigest: BodyDigest | undefined;
  /** While the headers answer is held: the body bytes (for the decision) and messages (to answer after it). */
  #heldChunks: Buffer[] = [];
  #heldMessages: HttpBody[] = [];
  /** Body bytes already answered before the headers (bodyAnswerBeforeHeaders): not echoed twice. */
  #earlyAnsweredBytes = 0;

  #decision: PickDecision | undefined;
  #deadlockNoted = false;

  constructor(call: ExtProcCall, env: SessionEnv) {
    this.#call = call;
    this.#env = env;
    this.#cfg = env.state.config;
    this.#ordinal = ++env.state.ordinal;
    this.#j = new StreamJournal(env, call.peer, this.#cfg.profile);
    call.setHandler(this);
  }

  // ---- the call's events (this session is its handler: grpc-transport.ts CallHandler) ----

  onMessage(m: ProcessingRequest | Undecodable): void {
    this.#enqueue(m);
  }

  onHalfClose(): void {
    if (this.#stream === StreamState.Open) this.#stream = StreamState.HalfClosed;
    if (!this.#busy) this.#maybeComplete();
  }

  onCancelled(reason: number | string): void {
    const why = typeof reason === 'number' ? `RST_STREAM ${reason}` : reason;
    if (this.#stream === StreamState.Finished) return;
    if (this.#holdingHeaders() && !this.#reqDigest?.seen) this.#noteDeadlock('gave up');
    this.#finish('client-cancelled', undefined, `${this.#stream === StreamState.Hung ? 'cancelled while hanging, ' : ''}${why}`);
  }

  onRefused(reason: string): void {
    // The transport refused a frame (over the receive limit, or compressed) and ended the call itself.
    this.#j.problem('refused-by-grpc', reason);
    this.#finish('bad-input', 8, reason);
  }

  get entry(): JournalEntry {
    return this.#j.entry;
  }

  /** Whether messages are still read and answered (not finished, not hung). */
  #live(): boolean {
    return this.#stream === StreamState.Open || this.#stream === StreamState.HalfClosed;
  }

  /** The headers answer is held for the body, or was and is being sent now. */
  #holdingHeaders(): boolean {
    return this.#headersAnswer === HeadersAnswer.Held || this.#headersAnswer === HeadersAnswer.Released;
  }

  #enqueue(m: ProcessingRequest | Undecodable): void {
    if (!this.#live()) return;
    this.#queue.push(m);
    if (!this.#busy) this.#drain();
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.#live()) {
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
    this.#j.problem('internal-error', String((e as Error)?.message ?? e));
    this.#endWithStatus(13, `mock EPP internal error: ${String((e as Error)?.message ?? e)}`, 'grpc-error');
  }

  #maybeComplete(): void {
    if (this.#stream !== StreamState.HalfClosed || this.#busy) return;
    // The client is done sending. A held headers answer is still owed if the body never ended.
    if (this.entry.phases.length === 0) this.#j.problem('empty-stream', 'client half-closed without sending a message');
    if (this.#holdingHeaders() && this.#req !== RequestState.AwaitingHeaders) {
      this.#j.problem('half-close-before-body-end', 'client half-closed before the request body ended');
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
      this.#modes?.request === BodySendMode.NONE
        ? `the request headers did not end the stream but the data plane declared ${declared}, so no body will come`
        : `the data plane declared ${declared}: it waits for the request-headers answer before it sends the body`;
    const tail = how === 'declared' ? "neither side can move until the data plane's timeout" : 'the data plane gave up before sending any body';
    this.#j.problem(
      'headers-answer-deadlock',
      `DEADLOCK: profile ${this.#cfg.profile} (like the real EPPs) answers the request headers only after the request body has ended; ${why}; ${tail}. Send the body without waiting for the headers answer (Envoy: FULL_DUPLEX_STREAMED).`,
    );
  }

  /** Bad input: log, count, end the stream with a gRPC status. */
  #badInput(reason: string, detail: string, code = 3 /* INVALID_ARGUMENT */): void {
    this.#j.problem(reason, detail);
    this.#endWithStatus(code, `${reason}: ${detail}`, 'bad-input');
  }

  #endWithStatus(code: number, details: string, how: StreamEnd): void {
    if (this.#stream === StreamState.Finished) return;
    this.#finish(how, code, details);
    this.#call.end(code, details);
  }

  #finish(how: StreamEnd, grpcCode?: number, detail?: string): void {
    if (this.#stream === StreamState.Finished) return;
    this.#stream = StreamState.Finished;
    this.#sleeper?.cancel();
    this.#queue = [];
    this.#heldChunks = [];
    this.#heldMessages = [];
    const e = this.entry;
    if (this.#reqDigest?.seen) e.requestBody = this.#reqDigest.summary();
    if (this.#respDigest?.seen) e.responseBody = this.#respDigest.summary();
    this.#j.end(how, grpcCode, detail);
    const picked = this.#decision?.outcome.kind === 'pick' ? this.#decision.outcome.picked : undefined;
    if (picked !== undefined) this.#env.state.picker.release?.(picked);
    this.#env.onClosed(this);
  }

  /** Server stopping: end what is still open. */
  abort(): void {
    this.#endWithStatus(14, 'mock EPP shutting down', 'server-stopped');
  }

  // ---- message handling ----

  #handle(m: ProcessingRequest | Undecodable, tIn: number): void | Promise<void> {
    if ('undecodable' in m) return this.#badInput('undecodable-message', `${m.size} bytes that are not a ProcessingRequest (${m.undecodable})`);
    if (this.#modes === undefined) {
      const modes = bodyModesOf(m, this.#cfg.defaultBodyMode);
      this.#modes = modes;
      if (modes.protocolConfig) this.entry.protocolConfig = modes.protocolConfig;
      this.entry.bodyMode = modes.journal;
    }
    const phase = m.request;
    if (phase === undefined) return this.#badInput('empty-request', 'ProcessingRequest with no phase set');
    this.#env.metrics.phases.inc(phase);
    const jp: JournalPhase = { phase, atMs: this.#j.msAt(tIn) };
    const md = m.metadata_context ? metadataToJson(m.metadata_context) : undefined;
    if (md) {
      jp.metadataContext = md;
      this.#j.mergeMetadata(md);
      const served = (md[DESTINATION_ENDPOINT_NAMESPACE] as Record<string, Json> | undefined)?.[SERVED_ENDPOINT_KEY];
      if (typeof served === 'string') this.entry.servedEndpoint = served;
      const hint = subsetList((md[SUBSET_HINT_NAMESPACE] as Record<string, Json> | undefined)?.[SUBSET_HINT_KEY]);
      if (hint !== undefined && this.entry.subsetHint === undefined) this.entry.subsetHint = hint;
    }
    if (m.attributes) {
      let attributes: Record<string, Json> | undefined;
      for (const k in m.attributes) (attributes ??= {})[k] = fromProtoStruct(m.attributes[k] as NonNullable<ProcessingRequest['attributes']>[string]);
      if (attributes) jp.attributes = attributes;
    }
    if (m.observability_mode) jp.observabilityMode = true;
    this.entry.phases.push(jp);

    switch (phase) {
      case 'request_headers':
        return this.#onRequestHeaders(m, jp, tIn);
      case 'request_body':
        return this.#onRequestBody(m, jp, tIn);
      case 'request_trailers':
        return this.#onRequestTrailers(m, jp, tIn);
      case 'response_headers': {
        const h = m.response_headers ?? {};
        jp.headers = journalHeaders(h.headers, 'response');
        jp.endOfStream = h.end_of_stream === true;
        if (this.#resp !== ResponseState.AwaitingHeaders) return this.#badInput('second-response-headers', 'response_headers received twice');
        this.#resp = ResponseState.AfterHeaders;
        if (m.observability_mode) return;
        if (this.#headersAnswer !== HeadersAnswer.Sent && this.#req !== RequestState.AwaitingHeaders) {
          this.#j.problem('phase-out-of-order', 'response_headers while the request headers answer was still owed');
        }
        return this.#answer('response_headers', tIn, () => responseHeadersAnswer(this.#cfg, h, md, this.#malformed('response_headers')));
      }
      case 'response_body': {
        const b = m.response_body ?? {};
        const body = bytesOf(b.body);
        jp.endOfStream = b.end_of_stream === true || b.end_of_stream_without_message === true;
        const digest = (this.#respDigest ??= new BodyDigest(this.#cfg.journal.firstBytes));
        jp.body = digest.add(body);
        if (digest.size > this.#cfg.maxBodyBytes) return this.#tooLarge('response', tIn);
        if (m.observability_mode) return;
        return this.#answerBody('response_body', b, body, tIn);
      }
      case 'response_trailers': {
        jp.headers = journalHeaders(m.response_trailers?.trailers, 'trailers');
        if (m.observability_mode) return;
        if (this.#cfg.trailers === 'stall') {
          this.#j.problem('trailers-stall', `response_trailers not answered (profile ${this.#cfg.profile}, trailers: stall, like the real EPPs)`);
          return;
        }
        return this.#answerTrailers('response_trailers', tIn);
      }
    }
  }

  #onRequestHeaders(m: ProcessingRequest, jp: JournalPhase, tIn: number): void | Promise<void> {
    const h = m.request_headers ?? {};
    const headers = journalHeaders(h.headers);
    jp.headers = headers;
    jp.endOfStream = h.end_of_stream === true;
    if (this.#req !== RequestState.AwaitingHeaders) return this.#badInput('second-request-headers', 'request_headers received twice');
    if (this.#resp !== ResponseState.AwaitingHeaders) return this.#badInput('phase-out-of-order', 'request_headers after response_headers');
    this.#requestHeaders = headers;
    this.entry.requestHeaders = headers;
    const model = headers['x-gateway-model-name'];
    if (model !== undefined) this.entry.model = model;
    if (m.observability_mode) {
      this.#req = RequestState.Body;
      return;
    }
    const modes = this.#modes as BodyModes;
    const bodyFollows = !jp.endOfStream && modes.request !== BodySendMode.NONE;
    const hold = this.#cfg.holdHeaders;
    // The real EPPs look only at end_of_stream: whatever the body mode, no answer until the body ends.
    const holding =
      hold === 'until-body-end'
        ? !jp.endOfStream
        : bodyFollows &&
          (hold === 'always' ||
            (hold === 'auto' && !modes.waitsForHeadersAnswer) ||
            (hold === 'when-needed' && !modes.waitsForHeadersAnswer && this.#env.state.needsBody));
    this.#req = bodyFollows || holding ? RequestState.Body : RequestState.Ended;
    if (holding) {
      this.#headersAnswer = HeadersAnswer.Held;
      // Known in advance: this client will not send the body before the headers answer.
      if (modes.waitsForHeadersAnswer || modes.request === BodySendMode.NONE) this.#noteDeadlock('declared');
      return;
    }
    this.#headersAnswer = HeadersAnswer.Due;
    this.#decide(undefined);
    return this.#answerRequestHeaders(tIn);
  }

  #onRequestBody(m: ProcessingRequest, jp: JournalPhase, tIn: number): void | Promise<void> {
    const b = m.request_body ?? {};
    const body = bytesOf(b.body);
    jp.endOfStream = b.end_of_stream === true || b.end_of_stream_without_message === true;
    if (this.#req === RequestState.AwaitingHeaders) return this.#badInput('body-before-headers', 'request_body before request_headers');
    if (this.#req === RequestState.Ended) return this.#badInput('body-after-end', 'request_body after the request body ended');
    const digest = (this.#reqDigest ??= new BodyDigest(this.#cfg.journal.firstBytes));
    jp.body = digest.add(body);
    if (digest.size > this.#cfg.maxBodyBytes) return this.#tooLarge('request', tIn);
    if (jp.endOfStream) this.#req = RequestState.Ended;
    if (m.observability_mode) return;
    if (this.#headersAnswer !== HeadersAnswer.Held) return this.#answerBody('request_body', b, body, tIn);
    this.#heldChunks.push(body);
    if (this.#req !== RequestState.Ended && this.#cfg.bodyAnswerBeforeHeaders) {
      // Opt-in defect of the lightweight EPP: an earlier chunk answered before the headers.
      this.#j.problem('out-of-order-by-profile', 'request_body answered before the request-headers answer (bodyAnswerBeforeHeaders)');
      this.#earlyAnsweredBytes += body.length;
      return this.#write(this.#bodyAnswer('request_body', b, body), tIn);
    }
    this.#heldMessages.push(b);
    if (this.#req !== RequestState.Ended) return;
    return this.#releaseHeld(tIn, false);
  }

  #onRequestTrailers(m: ProcessingRequest, jp: JournalPhase, tIn: number): void | Promise<void> {
    jp.headers = journalHeaders(m.request_trailers?.trailers, 'trailers');
    if (this.#req === RequestState.AwaitingHeaders) return this.#badInput('trailers-before-headers', 'request_trailers before request_headers');
    if (m.observability_mode) return;
    const wasEnded = this.#req === RequestState.Ended;
    this.#req = RequestState.Ended;
    const held = this.#holdingHeaders() && !wasEnded;
    if (this.#cfg.trailers === 'stall') {
      // The real EPPs ignore trailers: a body they still wait for never ends for them.
      this.#j.problem(
        'trailers-stall',
        `request_trailers not answered (profile ${this.#cfg.profile}, trailers: stall, like the real EPPs)${held ? '; the body never ended with end_of_stream, so the held request-headers answer never comes' : ''}`,
      );
      return;
    }
    if (held) return this.#releaseHeld(tIn, true);
    return this.#answerTrailers('request_trailers', tIn);
  }

  /** Has the pick decided (once, when the headers answer is due) and journals rule and directives. */
  #decide(body: Buffer | undefined): void {
    const st = this.#env.state;
    const d = decidePick({
      headers: this.#requestHeaders,
      ordinal: this.#ordinal,
      body,
      subsetHint: this.entry.subsetHint,
      config: this.#cfg,
      rules: st.rules,
      picker: st.picker,
      needsModel: st.needsModel,
    });
    this.#decision = d;
    if (d.rule !== undefined) this.entry.rule = d.rule;
    if (d.directives) {
      this.entry.directives = d.directives;
      for (const p of d.problems) this.#j.problem('bad-directive', p);
    }
  }

  /** The body has ended while the headers answer was held: decide, answer headers, then the held body. */
  #releaseHeld(tIn: number, byTrailers: boolean): void | Promise<void> {
    const chunks = this.#heldChunks;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    this.#heldChunks = [];
    this.#headersAnswer = HeadersAnswer.Released;
    this.#decide(body);
    const msgs = this.#heldMessages;
    this.#heldMessages = [];
    const held: HeldBody = { bodies: [], byTrailers, tIn };
    if ((this.#modes as BodyModes).request === BodySendMode.FULL_DUPLEX_STREAMED && this.#cfg.bodyAnswer === 'streamed-echo') {
      // One streamed answer with the whole body, as the full EPP does after buffering.
      const last = msgs[msgs.length - 1];
      const eos = !byTrailers && last !== undefined && (last.end_of_stream === true || last.end_of_stream_without_message === true);
      held.bodies.push({ b: { end_of_stream: eos }, bytes: body.subarray(this.#earlyAnsweredBytes) });
    } else {
      for (const b of msgs) held.bodies.push({ b, bytes: bytesOf(b.body) });
    }
    const r = this.#answerRequestHeaders(tIn);
    if (r instanceof Promise) return r.then(() => this.#answerHeld(held, 0));
    return this.#answerHeld(held, 0);
  }

  /** Answers the held body messages (then the trailers that ended it) in order, from `from`. */
  #answerHeld(held: HeldBody, from: number): void | Promise<void> {
    const n = held.bodies.length;
    for (let i = from; i <= n; i++) {
      if (!this.#live()) return;
      let r: void | Promise<void> = undefined;
      if (i < n) {
        const x = held.bodies[i] as HeldBody['bodies'][number];
        r = this.#answerBody('request_body', x.b, x.bytes, held.tIn);
      } else if (held.byTrailers) r = this.#answerTrailers('request_trailers', held.tIn);
      if (r instanceof Promise) return r.then(() => this.#answerHeld(held, i + 1));
    }
  }

  #tooLarge(which: 'request' | 'response', tIn: number): void {
    this.#j.problem('body-too-large', `${which} body over maxBodyBytes (${this.#cfg.maxBodyBytes})`);
    this.#heldChunks = [];
    this.#heldMessages = [];
    this.#sendImmediate({ kind: 'immediate', status: 413, body: `${which} body larger than ${this.#cfg.maxBodyBytes} bytes`, details: 'eppkit_mock_body_too_large' }, tIn);
  }

  // ---- faults ----

  #malformed(phase: Phase) {
    return this.#decision ? malformedFor(this.#decision.action, phase) : undefined;
  }

  /**
   * Runs the delay and the terminal fault of a phase (once per phase). Returns true when the
   * phase's answer must not be sent, a promise of that after a delay.
   */
  #faults(phase: Phase, tIn: number): boolean | Promise<boolean> {
    const bit = PHASE_BIT[phase];
    if (this.#firedPhases & bit) return false;
    this.#firedPhases |= bit;
    const a = this.#decision?.action;
    if (a === undefined || !hasFaultAt(a, phase)) return false;
    const d = delayAt(a, phase);
    if (d) {
      const sleeper = (this.#sleeper ??= new StreamSleeper());
      return sleeper.sleep(sampleDelayMs(d)).then((slept) => {
        // A stream that ended while sleeping gets nothing more.
        if (!slept) throw STOP;
        return this.#terminalFault(phase, tIn);
      });
    }
    return this.#terminalFault(phase, tIn);
  }

  #terminalFault(phase: Phase, tIn: number): boolean {
    if (this.#stream === StreamState.Finished) throw STOP;
    const f = faultFor((this.#decision as PickDecision).action, phase);
    if (!f) return false;
    const metrics = this.#env.metrics;
    switch (f.kind) {
      case 'hang':
        this.#stream = StreamState.Hung;
        metrics.answers.inc('hang');
        return true;
      case 'reset': {
        metrics.answers.inc('reset');
        // The call is marked ended before it goes, so no 'cancelled' follows; the journal says what the transport did.
        const what = this.#call.reset(h2.NGHTTP2_INTERNAL_ERROR);
        this.#finish('reset', undefined, what);
        return true;
      }
      case 'close':
        this.#call.end();
        metrics.answers.inc('close');
        this.#finish('closed-ok', 0, `closed by rule at ${phase}`);
        return true;
      case 'grpc-error':
        metrics.answers.inc('grpc_error');
        this.#endWithStatus(f.code, f.message, 'grpc-error');
        return true;
      case 'immediate':
        this.#sendImmediate(f, tIn);
        return true;
    }
  }

  #sendImmediate(f: ImmediateFault, tIn: number): void {
    this.#write(immediateAnswer(f, this.#cfg.append), tIn);
    this.#call.end();
    this.#finish('immediate-response', 0, `status ${f.status}`);
  }

  // ---- answers ----

  #write(a: Answer, tIn: number): void {
    if (this.#stream === StreamState.Finished) return;
    this.#j.answered(a.ans, tIn);
    this.#call.write(a.resp);
  }

  /** Runs the phase's faults, then writes the answer `build` makes unless a fault ended it. */
  #answer(phase: Phase, tIn: number, build: () => Answer): void | Promise<void> {
    const stop = this.#faults(phase, tIn);
    if (stop === false) return this.#write(build(), tIn);
    if (stop === true) return;
    return stop.then((s) => {
      if (!s) this.#write(build(), tIn);
    });
  }

  #answerRequestHeaders(tIn: number): void | Promise<void> {
    const stop = this.#faults('request_headers', tIn);
    if (stop === false) return this.#sendRequestHeaders(tIn);
    if (stop === true) return;
    return stop.then((s) => {
      if (!s) this.#sendRequestHeaders(tIn);
    });
  }

  #sendRequestHeaders(tIn: number): void {
    this.#headersAnswer = HeadersAnswer.Sent;
    const d = this.#decision as PickDecision;
    const out = d.outcome;
    if (out.kind === 'no-endpoint') {
      const ne = this.#cfg.noEndpoint;
      this.entry.noEndpoint = out.details;
      if ('grpcStatus' in ne) {
        // The lightweight EPP ends the stream: the data plane's failure mode decides.
        this.#env.metrics.answers.inc('grpc_error');
        this.#endWithStatus(ne.grpcStatus, `${ne.message ?? 'no endpoint'}: ${out.details}`, 'grpc-error');
        return;
      }
      this.#sendImmediate({ kind: 'immediate', status: ne.status, body: out.details, details: 'eppkit_mock_no_endpoint' }, tIn);
      return;
    }
    const malformed = malformedFor(d.action, 'request_headers');
    let value = out.value;
    let pick: NonNullable<JournalEntry['pick']> | undefined;
    if (malformed === 'garbage-endpoint' || malformed === 'ipv6-endpoint') {
      value = malformed === 'garbage-endpoint' ? 'not-an-endpoint:garbage' : `[::1]:${out.value.split(',')[0]?.split(':').pop() || '8000'}`;
      pick = { value, endpoints: [value], source: 'malformed' };
    } else pick = { value, endpoints: out.endpoints, source: out.source };
    const reqDigest = this.#reqDigest;
    this.#write(
      requestHeadersAnswer({ cfg: this.#cfg, action: d.action, value, malformed, requestHeaders: this.#requestHeaders, bodySize: reqDigest?.seen ? reqDigest.size : undefined }),
      tIn,
    );
    // Only a pick that went out is journaled and counted (a stream can end before its answer).
    if (this.#stream !== StreamState.Finished) {
      this.entry.pick = pick;
      if (out.picked !== undefined && pick.source !== 'malformed') this.#env.metrics.picks.inc(out.picked);
    }
  }

  #bodyAnswer(phase: 'request_body' | 'response_body', b: HttpBody, body: Buffer): Answer {
    const modes = this.#modes as BodyModes;
    return bodyAnswer(
      phase,
      phase === 'request_body' ? modes.request : modes.response,
      this.#cfg.bodyAnswer,
      phase === 'request_body' ? this.#decision?.action.replaceBody : undefined,
      b,
      body,
      this.#malformed(phase),
    );
  }

  #answerBody(phase: 'request_body' | 'response_body', b: HttpBody, body: Buffer, tIn: number): void | Promise<void> {
    const stop = this.#faults(phase, tIn);
    if (stop === false) return this.#write(this.#bodyAnswer(phase, b, body), tIn);
    if (stop === true) return;
    return stop.then((s) => {
      if (!s) this.#write(this.#bodyAnswer(phase, b, body), tIn);
    });
  }

  #answerTrailers(phase: 'request_trailers' | 'response_trailers', tIn: number): void | Promise<void> {
    return this.#answer(phase, tIn, () => trailersAnswer(phase, this.#malformed(phase)));
  }
}
