// One ext_proc stream of the mock in the BBR role (config `role: bbr`): body-based routing as
// the Gateway API Inference Extension's BBR server answers it. The body's top-level `model`
// becomes the X-Gateway-Model-Name request header, so a plane that chains BBR before the EPP
// (Envoy with two ext_proc filters) can be tested without the real server.
//
// What upstream BBR answers, and so this session:
// - FULL_DUPLEX_STREAMED: the request-headers answer is held until the body has ended, then
//   sent with the header mutation and clear_route_cache, followed by the body echoed back as
//   streamed_response chunks (the last with end_of_stream).
// - Other body modes: the headers are answered at once (empty); the body answer carries the
//   mutation (STREAMED: every chunk but the last is answered empty).
// - No body (headers end_of_stream): an empty headers answer.
// - No usable model: the same answers without the mutation. Not JSON: the stream ends with
//   gRPC UNKNOWN (the data plane's failure mode decides). A model that is not a string is
//   stringified (Go's %v). Each of these three is configurable (mock-epp-config.ts `bbr`).
import { describeOutcome, scanModel } from '../core/bbr-model.ts';
import { setHeaderOption } from '../core/headers.ts';
import { BodySendMode, type CommonResponse, type ProcessingRequest, type ProcessingResponse } from '../core/proto.ts';
import { bytesOf, summarizeBody } from './body-digest.ts';
import type { GrpcServerCall } from './grpc-transport.ts';
import type { JournalAnswer, JournalEntry, JournalPhase, StreamEnd } from './journal.ts';
import { BODY_MODE_NAMES, type BbrRoleConfig } from './mock-epp-config.ts';
import type { SessionEnv, Undecodable } from './session-env.ts';
import { StreamJournal, journalHeaders } from './stream-journal.ts';

const summary = summarizeBody;

/** Go's %v of a decoded JSON value, as upstream BBR writes a non-string model. */
function goFormat(v: unknown): string {
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goFormat).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${goFormat(o[k])}`).join(' ')}]`;
  }
  return String(v);
}

export class BbrSession {
  readonly #call: GrpcServerCall<ProcessingResponse>;
  readonly #env: SessionEnv;
  readonly #cfg: BbrRoleConfig;
  readonly #firstBytes: number;
  readonly #j: StreamJournal;
  #finished = false;
  #streaming = false;
  #modeKnown = false;
  #gotHeaders = false;
  #headersAnswered = false;
  #bodyEnded = false;
  #chunks: Buffer[] = [];
  #size = 0;
  #respHeld = false;
  #respChunks: Buffer[] = [];

  constructor(call: GrpcServerCall<ProcessingResponse>, env: SessionEnv) {
    this.#call = call;
    this.#env = env;
    this.#cfg = env.state.config.bbr;
    this.#firstBytes = env.state.config.journal.firstBytes;
    this.#j = new StreamJournal(env, call.peer, undefined, ' (bbr)');
    call.setHandler(this);
  }

  // ---- the call's events (this session is its handler: grpc-transport.ts CallHandler) ----

  onMessage(m: ProcessingRequest | Undecodable): void {
    this.#onMessage(m);
  }

  onHalfClose(): void {
    if (this.#finished) return;
    this.#call.end();
    this.#finish('completed');
  }

  onCancelled(reason: number | string): void {
    this.#finish('client-cancelled', undefined, typeof reason === 'number' ? `RST_STREAM ${reason}` : reason);
  }

  onRefused(reason: string): void {
    this.#finish('bad-input', 8, reason);
  }

  get entry(): JournalEntry {
    return this.#j.entry;
  }

  #finish(how: StreamEnd, grpcCode?: number, detail?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#size > 0 || this.#bodyEnded) this.entry.requestBody = summary(Buffer.concat(this.#chunks), this.#firstBytes);
    this.#chunks = [];
    this.#respChunks = [];
    this.#j.end(how, grpcCode, detail);
    this.#env.onClosed(this);
  }

  /** Server stopping. */
  abort(): void {
    if (this.#finished) return;
    this.#finish('server-stopped', 14, 'mock EPP shutting down');
    this.#call.end(14, 'mock EPP shutting down');
  }

  #endWith(code: number, details: string, how: StreamEnd): void {
    if (this.#finished) return;
    this.#finish(how, code, details);
    this.#call.end(code, details);
  }

  #write(resp: ProcessingResponse, a: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'>, tIn: number): void {
    if (this.#finished) return;
    this.#j.answered(a, tIn);
    this.#call.write(resp);
  }

  #problem(reason: string, detail: string): void {
    this.#j.problem(reason, detail);
  }

  #onMessage(m: ProcessingRequest | Undecodable): void {
    if (this.#finished) return;
    const tIn = performance.now();
    if ('undecodable' in m) {
      this.#problem('undecodable-message', `${m.size} bytes that are not a ProcessingRequest`);
      return this.#endWith(3, 'undecodable-message', 'bad-input');
    }
    if (!this.#modeKnown) {
      this.#modeKnown = true;
      const pc = m.protocol_config;
      const req = pc?.request_body_mode ?? BODY_MODE_NAMES.indexOf(this.#env.state.config.defaultBodyMode);
      const resp = pc?.response_body_mode ?? 0;
      this.#streaming = req === BodySendMode.FULL_DUPLEX_STREAMED;
      this.entry.bodyMode = { request: BODY_MODE_NAMES[req] ?? String(req), response: BODY_MODE_NAMES[resp] ?? String(resp) };
      if (pc) {
        this.entry.protocolConfig = {
          requestBodyMode: this.entry.bodyMode.request,
          responseBodyMode: this.entry.bodyMode.response,
          sendBodyWithoutWaitingForHeaderResponse: pc.send_body_without_waiting_for_header_response === true,
        };
      }
    }
    const phase = m.request;
    if (phase === undefined) {
      this.#problem('empty-request', 'ProcessingRequest with no phase set');
      return this.#endWith(3, 'empty-request', 'bad-input');
    }
    this.#env.metrics.phases.inc(phase);
    const jp: JournalPhase = { phase, atMs: this.#j.msAt(tIn) };
    this.entry.phases.push(jp);
    switch (phase) {
      case 'request_headers': {
        const h = m.request_headers ?? {};
        jp.headers = journalHeaders(h.headers);
        jp.endOfStream = h.end_of_stream === true;
        if (this.#gotHeaders) {
          this.#problem('second-request-headers', 'request_headers received twice');
          return this.#endWith(3, 'second-request-headers', 'bad-input');
        }
        this.#gotHeaders = true;
        this.entry.requestHeaders = jp.headers;
        const sent = jp.headers['x-gateway-model-name'];
        if (sent !== undefined) this.entry.model = sent;
        if (jp.endOfStream) this.#bodyEnded = true;
        // Streaming with a body to come: held until the body has ended.
        if (this.#streaming && !jp.endOfStream) return;
        this.#headersAnswered = true;
        return this.#write({ request_headers: { response: {} } }, { kind: 'request_headers' }, tIn);
      }
      case 'request_body': {
        const b = m.request_body ?? {};
        const body = bytesOf(b.body);
        jp.endOfStream = b.end_of_stream === true || b.end_of_stream_without_message === true;
        jp.body = summary(body, this.#firstBytes);
        if (!this.#gotHeaders || this.#bodyEnded) {
          this.#problem('body-out-of-order', !this.#gotHeaders ? 'request_body before request_headers' : 'request_body after the body ended');
          return this.#endWith(3, 'body-out-of-order', 'bad-input');
        }
        if (body.length > 0) this.#chunks.push(body);
        this.#size += body.length;
        if (!jp.endOfStream) {
          // STREAMED and friends want one answer per chunk; full duplex answers at the end.
          if (!this.#streaming) this.#write({ request_body: { response: {} } }, { kind: 'request_body' }, tIn);
          return;
        }
        this.#bodyEnded = true;
        return this.#onBodyEnd(tIn);
      }
      case 'request_trailers': {
        jp.headers = journalHeaders(m.request_trailers?.trailers, 'trailers');
        if (!this.#bodyEnded && this.#gotHeaders) {
          // The body ended with trailers: decide now, then answer the trailers.
          this.#bodyEnded = true;
          this.#onBodyEnd(tIn);
        }
        return this.#write({ request_trailers: {} }, { kind: 'request_trailers' }, tIn);
      }
      case 'response_headers': {
        const h = m.response_headers ?? {};
        jp.headers = journalHeaders(h.headers, 'response');
        jp.endOfStream = h.end_of_stream === true;
        if (this.#streaming && !jp.endOfStream && this.entry.bodyMode.response === 'FULL_DUPLEX_STREAMED') {
          this.#respHeld = true;
          return;
        }
        return this.#write({ response_headers: { response: {} } }, { kind: 'response_headers' }, tIn);
      }
      case 'response_body': {
        const b = m.response_body ?? {};
        const body = bytesOf(b.body);
        jp.endOfStream = b.end_of_stream === true || b.end_of_stream_without_message === true;
        jp.body = summary(body, this.#firstBytes);
        if (!this.#respHeld) return this.#write({ response_body: { response: {} } }, { kind: 'response_body' }, tIn);
        if (body.length > 0) this.#respChunks.push(body);
        if (!jp.endOfStream) return;
        this.#respHeld = false;
        this.#write({ response_headers: { response: {} } }, { kind: 'response_headers' }, tIn);
        return this.#echo('response_body', Buffer.concat(this.#respChunks), tIn);
      }
      case 'response_trailers': {
        jp.headers = journalHeaders(m.response_trailers?.trailers, 'trailers');
        return this.#write({ response_trailers: {} }, { kind: 'response_trailers' }, tIn);
      }
    }
  }

  /** The whole request body is here: find the model, answer. */
  #onBodyEnd(tIn: number): void {
    const cfg = this.#cfg;
    const body = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    const o = scanModel(body, cfg.maxBodyBytes);
    let model: string | undefined;
    if (o.status === 'ok') model = o.model;
    else if (o.status === 'not_string' && cfg.nonStringModel === 'stringify') {
      try {
        model = goFormat((JSON.parse(body.toString('utf8')) as Record<string, unknown>).model);
      } catch {
        // Not JSON after all (the scan stops at the model): upstream fails the whole parse.
        model = undefined;
      }
    }
    if (model === undefined && o.status !== 'no_body') {
      const why = describeOutcome(o, cfg.maxBodyBytes);
      this.#j.note(`bbr: ${why}`);
      if (cfg.requireModel) {
        const status = o.status === 'too_large' ? 413 : 400;
        this.#write(
          { immediate_response: { status: { code: status }, body: Buffer.from(`eppkit mock BBR: ${why}`), details: 'eppkit_mock_bbr_no_model' } },
          { kind: 'immediate_response', status },
          tIn,
        );
        this.#call.end();
        return this.#finish('immediate-response', 0, `status ${status}`);
      }
      if (o.status === 'not_json' && cfg.invalidJson === 'grpc-error') return this.#endWith(2, `bbr: ${why}`, 'grpc-error');
    }
    const common: CommonResponse = {};
    const set: Record<string, string> = {};
    if (model !== undefined) {
      common.clear_route_cache = true;
      // raw_value only: the UTF-8 bytes of the model, as upstream writes them.
      common.header_mutation = { set_headers: [setHeaderOption(cfg.header, Buffer.from(model, 'utf8').toString('latin1'))] };
      set[cfg.header.toLowerCase()] = model;
    }
    const a = (kind: string): Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'> => (model !== undefined ? { kind, setHeaders: set } : { kind });
    if (this.#streaming) {
      if (!this.#headersAnswered) {
        this.#headersAnswered = true;
        this.#write({ request_headers: { response: common } }, a('request_headers'), tIn);
      }
      return this.#echo('request_body', body, tIn);
    }
    this.#write({ request_body: { response: common } }, a('request_body'), tIn);
  }

  /** Full duplex: the body goes back as streamed_response chunks, the last with end_of_stream. */
  #echo(phase: 'request_body' | 'response_body', body: Buffer, tIn: number): void {
    const step = this.#cfg.chunkBytes;
    let off = 0;
    do {
      const part = body.subarray(off, off + step);
      off += part.length;
      const eos = off >= body.length;
      this.#write(
        { [phase]: { response: { body_mutation: { streamed_response: { body: part, end_of_stream: eos } } } } } as ProcessingResponse,
        { kind: phase, streamedBody: { size: part.length, endOfStream: eos } },
        tIn,
      );
    } while (off < body.length);
  }
}
