// One ext_proc stream for one client request: sends the request headers (and body, as the
// route's body mode says), turns the EPP's answers into one Decision, relays streamed body
// answers, and optionally runs the response-headers phase with the served endpoint.
//
// Timeout rule: the per-message timer runs only while the EPP owes an answer AND everything
// it needs has been sent (so a slow client upload never counts against the EPP); it restarts
// on every message from the EPP.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { headerValueText } from '../../core/headers.ts';
import { fromProtoStruct, toProtoStruct } from '../../core/proto-struct.ts';
import {
  BodySendMode,
  DESTINATION_ENDPOINT_HEADER,
  DESTINATION_ENDPOINT_NAMESPACE,
  SERVED_ENDPOINT_KEY,
  SUBSET_HINT_KEY,
  SUBSET_HINT_NAMESPACE,
  type CommonResponse,
  type HeaderMutation,
  type HeaderValue,
  type ImmediateResponse,
  type ProcessingRequest,
  type ProcessingResponse,
  type ProtoStruct,
} from '../../core/proto.ts';
import type { BodyMode } from '../../core/route-model.ts';
import type { Logger } from '../../core/logger.ts';
import type { ExtProcCall, ExtProcClient } from './epp-channels.ts';
import { parseEndpointList, type Allowlist, type Endpoint } from './endpoint.ts';
import type { EppFailureReason } from './outcomes.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';

export interface RouteDecision {
  kind: 'route';
  endpoints: Endpoint[];
  /** The raw endpoint value the EPP sent. */
  raw: string;
  /** Header mutations to apply to the upstream request, in arrival order. */
  mutations: HeaderMutation[];
  /** Buffered mode: the body the EPP replaced the request body with (clear = empty). */
  bodyReplacement?: Buffer;
}
export interface ImmediateDecision {
  kind: 'immediate';
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  details?: string;
}
export interface FailDecision {
  kind: 'fail';
  reason: EppFailureReason;
  detail: string;
}
export type Decision = RouteDecision | ImmediateDecision | FailDecision;

export type ResponsePhaseResult =
  | { kind: 'continue'; mutations: HeaderMutation[] }
  | ImmediateDecision
  | FailDecision;

export interface EppExchangeOptions {
  timeoutMs: number;
  bodyMode: BodyMode;
  allow: Allowlist;
  metrics: ProxyMetrics;
  log: Logger;
  responseProcessing: boolean;
  subsetHint?: readonly string[];
}

const BODY_MODE_WIRE: Record<BodyMode, number> = {
  none: BodySendMode.NONE,
  buffered: BodySendMode.BUFFERED,
  streamed: BodySendMode.FULL_DUPLEX_STREAMED,
};

type BodySink = (chunk: Buffer | null) => void;

function immediateFrom(ir: ImmediateResponse): ImmediateDecision {
  const code = ir.status?.code ?? 0;
  const headers: Array<[string, string]> = [];
  for (const o of ir.headers?.set_headers ?? []) {
    if (o.header?.key) headers.push([o.header.key, headerValueText(o.header)]);
  }
  const d: ImmediateDecision = {
    kind: 'immediate',
    // Envoy: a missing status or one below 200 becomes 200.
    status: code >= 200 && code <= 999 ? code : 200,
    headers,
    body: ir.body ?? Buffer.alloc(0),
  };
  if (ir.details) d.details = ir.details;
  return d;
}

function metadataEndpoint(md: ProtoStruct | undefined): string | undefined {
  const ns = fromProtoStruct(md)[DESTINATION_ENDPOINT_NAMESPACE];
  if (!ns || typeof ns !== 'object' || Array.isArray(ns)) return undefined;
  const v = ns[DESTINATION_ENDPOINT_HEADER];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  // Tolerate a list of strings (some EPPs send the fallbacks as a list).
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : '')).join(',');
  return '';
}

function headerEndpoint(m: HeaderMutation | undefined): string | undefined {
  let found: string | undefined;
  for (const o of m?.set_headers ?? []) {
    if (o.header && o.header.key.toLowerCase() === DESTINATION_ENDPOINT_HEADER) found = headerValueText(o.header);
  }
  return found;
}

/**
 * Streams we half-closed and wait for the EPP to end. One shared sweep (not a timer per
 * request) cancels those the EPP never ends, so a misbehaving EPP cannot leak streams.
 */
const lingering = {
  due: new Map<EppExchange, number>(),
  timer: undefined as NodeJS.Timeout | undefined,
  add(ex: EppExchange, graceMs: number): void {
    this.due.set(ex, performance.now() + graceMs);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), 500);
      this.timer.unref();
    }
  },
  delete(ex: EppExchange): void {
    this.due.delete(ex);
  },
  sweep(): void {
    const now = performance.now();
    for (const [ex, t] of this.due) if (t <= now) ex.cancel();
    if (this.due.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  },
};

/**
 * Where the request direction of the exchange stands. Envoy's ext_proc filter keeps one such
 * state per direction; these are the ones node-proxy goes through:
 * - awaiting-headers: the request headers went out (maybe body too); their answer is owed.
 * - awaiting-body: buffered mode, headers answered; the body answer is owed (the body was or
 *   will be sent). Envoy takes the pick only with that answer, and times it out like any other.
 * - relaying: streamed mode, decided; the EPP answers each chunk (a plain answer releases the
 *   oldest chunk sent, a `body` mutation replaces it, clear_body drops it).
 * - duplex: streamed mode, decided; the EPP owns the body (streamed_response) until its end.
 * - pass-through: streamed mode; the EPP closed with OK mid-body: chunks go straight upstream.
 * - bypassed: streamed mode, fail-open after a failure: the EPP is ignored for the rest.
 * - complete: decided and nothing more owed for the request (its body, if any, has ended).
 * - failed: a failure ended the request direction (the decision or a late failure).
 */
export type RequestState = 'awaiting-headers' | 'awaiting-body' | 'relaying' | 'duplex' | 'pass-through' | 'bypassed' | 'complete' | 'failed';

/** The response direction: idle until the response-headers phase, then its answer owed, then complete. */
export type ResponseState = 'idle' | 'awaiting-headers' | 'complete';

/** Our side of the gRPC stream: open, half-closed by finish(), or cancelled (RST_STREAM). */
export type LocalStreamState = 'open' | 'half-closed' | 'cancelled';

/** The EPP's side: open, ended (any status or error), or ended with OK. */
export type RemoteStreamState = 'open' | 'closed' | 'closed-ok';

/** What the request direction may still deliver once the body is relayed: a failure, or an ImmediateResponse. */
export type LateAnswer = FailDecision | ImmediateDecision;

export class EppExchange {
  readonly call: ExtProcCall;
  readonly decision: Promise<Decision>;
  private resolveDecision!: (d: Decision) => void;
  private decided: Decision | undefined;
  private request: RequestState = 'awaiting-headers';
  private response: ResponseState = 'idle';
  private local: LocalStreamState = 'open';
  private remote: RemoteStreamState = 'open';
  private timer: NodeJS.Timeout | undefined;
  /** The timeout fired; the failure waits for this loop iteration's I/O (see arm()). */
  private expiry: NodeJS.Immediate | undefined;
  private readonly started = performance.now();
  private readonly opts: EppExchangeOptions;

  // what we sent
  /** A body follows the headers on this stream (set by sendHeaders). */
  private bodyExpected = false;
  /** The last request message (headers with end_of_stream, or the body's end) went out. */
  private allSent = false;

  // what the EPP answered
  private headerValue: string | undefined;
  private metadataValue: string | undefined;
  private readonly mutations: HeaderMutation[] = [];
  private bodyReplacement: Buffer | undefined;

  // streamed body relay (after headers; the EPP answers chunks)
  /** Chunks sent and not yet answered (relaying), kept for fail-open's bypass(). */
  private readonly pending: Buffer[] = [];
  private clientEnded = false;
  /** The EPP answered with streamed_response: it owns the body from then on (even after it ended it). */
  private ownedByEpp = false;
  private sink: BodySink | undefined;
  private readonly early: Array<Buffer | null> = [];
  private late: ((a: LateAnswer) => void) | undefined;
  /** A late answer that came before onBody() gave somewhere to deliver it. */
  private lateHeld: LateAnswer | undefined;

  // response phase
  private responseWaiter: ((r: ResponsePhaseResult) => void) | undefined;

  constructor(client: ExtProcClient, opts: EppExchangeOptions) {
    this.opts = opts;
    this.decision = new Promise((r) => (this.resolveDecision = r));
    opts.metrics.eppStreamOpened();
    this.call = client.Process();
    this.call.on('data', (m: ProcessingResponse) => this.onMessage(m));
    this.call.on('error', (e) => this.onError(e));
    this.call.on('status', () => this.markClosed());
    this.call.on('end', () => this.onEnd());
  }

  /** The states per direction and of the stream (for tests and debugging). */
  get state(): { request: RequestState; response: ResponseState; local: LocalStreamState; remote: RemoteStreamState } {
    return { request: this.request, response: this.response, local: this.local, remote: this.remote };
  }

  /** First message: request headers, with protocol_config (and the subset hint, if any). */
  sendHeaders(headers: HeaderValue[], endOfStream: boolean): void {
    // Body mode none: no body follows on this stream, so say so. The real EPPs look only at
    // end_of_stream and would hold their answer for a body that never comes (a deadlock).
    const eos = endOfStream || this.opts.bodyMode === 'none';
    this.bodyExpected = !eos;
    const msg: ProcessingRequest = {
      request_headers: { headers: { headers }, end_of_stream: eos },
      protocol_config: {
        request_body_mode: BODY_MODE_WIRE[this.opts.bodyMode],
        response_body_mode: BodySendMode.NONE,
        // The EPP may hold the headers answer until the body has ended (reference EPP).
        send_body_without_waiting_for_header_response: this.opts.bodyMode !== 'none',
      },
    };
    if (this.opts.subsetHint && this.opts.subsetHint.length > 0) {
      msg.metadata_context = {
        filter_metadata: {
          [SUBSET_HINT_NAMESPACE]: toProtoStruct({ [SUBSET_HINT_KEY]: [...this.opts.subsetHint] }),
        },
      };
    }
    this.write(msg);
    if (eos) this.setAllSent();
  }

  /** A body chunk (buffered: the whole body once, end=true; streamed: each chunk). */
  sendBody(chunk: Buffer, end: boolean): void {
    if (this.request === 'bypassed') return;
    if (this.request === 'pass-through') {
      // The EPP closed with OK mid-body: ignored from then on, the chunks go straight through.
      this.emit(chunk);
      if (end) this.endBody();
      return;
    }
    // Streamed mode keeps each chunk until the EPP answers for it (that is the one copy);
    // after a failure the chunks stay here for fail-open's bypass().
    if (this.opts.bodyMode === 'streamed' && !this.ownedByEpp) {
      if (chunk.length > 0 || end) this.pending.push(chunk);
      if (end) this.clientEnded = true;
    }
    if (this.local !== 'open' || this.remote !== 'open') return;
    this.write({ request_body: { body: chunk, end_of_stream: end } });
    if (end) this.setAllSent();
  }

  /**
   * Streamed mode: where upstream-bound body bytes go (null = end), and where a late answer
   * goes (a failure, or an ImmediateResponse while the body is relayed). Flushes what came early.
   */
  onBody(sink: BodySink, late: (a: LateAnswer) => void): void {
    this.sink = sink;
    this.late = late;
    for (const c of this.early.splice(0)) sink(c);
    const held = this.lateHeld;
    this.lateHeld = undefined;
    if (held) late(held);
  }

  /** Runs the response-headers phase; resolves with mutations, an immediate answer, or a failure. */
  responseHeaders(status: number, headers: HeaderValue[], served: string, endOfStream: boolean): Promise<ResponsePhaseResult> {
    return new Promise((resolve) => {
      if (this.remote !== 'open' || this.local !== 'open') {
        this.response = 'complete';
        // An EPP that ended its stream with OK is ignored from then on (Envoy's table).
        if (this.remote === 'closed-ok') resolve({ kind: 'continue', mutations: [] });
        else resolve({ kind: 'fail', reason: 'epp_closed', detail: 'stream closed before the response phase' });
        return;
      }
      this.response = 'awaiting-headers';
      this.responseWaiter = resolve;
      this.write({
        response_headers: {
          headers: { headers: [{ key: ':status', raw_value: Buffer.from(String(status)) }, ...headers] },
          end_of_stream: endOfStream,
        },
        metadata_context: {
          filter_metadata: {
            [DESTINATION_ENDPOINT_NAMESPACE]: toProtoStruct({ [SERVED_ENDPOINT_KEY]: served }),
          },
        },
      });
      this.arm();
    });
  }

  /** Done with the EPP: half-close; the EPP ends the stream. Cancels if it never does. */
  finish(): void {
    if (this.local !== 'open') return;
    this.local = 'half-closed';
    this.clearTimer();
    if (this.remote !== 'open') return;
    try {
      this.call.end();
    } catch {
      /* already gone */
    }
    lingering.add(this, Math.max(1000, this.opts.timeoutMs * 2));
  }

  /** Drops the stream now (client gone, fail-open, failure). */
  cancel(): void {
    this.local = 'cancelled';
    this.clearTimer();
    lingering.delete(this);
    if (this.remote === 'open') this.call.cancel();
  }

  /** Streamed mode, fail-open: ignore the EPP for the rest of the body. */
  bypass(): Buffer[] {
    this.request = 'bypassed';
    this.ownedByEpp = false;
    // Chunks the EPP already released (no sink yet), then those it still held.
    const out = this.early.filter((c): c is Buffer => c !== null);
    this.early.length = 0;
    return [...out, ...this.pending.splice(0)];
  }

  get streamedBodyOwnedByEpp(): boolean {
    return this.ownedByEpp;
  }

  // ---- internals ----

  private write(msg: ProcessingRequest): void {
    if (this.remote !== 'open' || this.local !== 'open') return;
    try {
      this.call.write(msg);
    } catch (e) {
      this.fail('epp_grpc_error', `write failed: ${(e as Error).message}`);
    }
  }

  private setAllSent(): void {
    this.allSent = true;
    this.arm();
  }

  /** An answer is owed by the EPP: a phase of ours waits for it. */
  private owesAnswer(): boolean {
    if (this.response === 'awaiting-headers') return true;
    const r = this.request;
    return r === 'awaiting-headers' || r === 'awaiting-body' || r === 'relaying' || r === 'duplex';
  }

  private arm(): void {
    this.clearTimer();
    if (this.local !== 'open' || this.remote !== 'open') return;
    if (!this.owesAnswer()) return;
    // A slow client upload never counts against the EPP: the request phases time only once
    // everything was sent.
    if (!this.allSent && this.response !== 'awaiting-headers') return;
    this.timer = setTimeout(() => {
      // Node runs expired timers before it polls sockets. On a starved CPU (a busy machine, a
      // burst) one loop iteration can outlast the timeout while the EPP's answer already sits in
      // the socket: failing here would drop a request the EPP answered in time. Decide after
      // this iteration's I/O instead (setImmediate runs after the poll phase); an answer read
      // meanwhile clears the timer and the immediate with it.
      this.timer = undefined;
      this.expiry = setImmediate(() => {
        this.expiry = undefined;
        this.fail('epp_timeout', `no answer within ${this.opts.timeoutMs} ms`);
      });
    }, this.opts.timeoutMs);
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.expiry) {
      clearImmediate(this.expiry);
      this.expiry = undefined;
    }
  }

  private decide(d: Decision): void {
    if (this.decided) return;
    this.decided = d;
    if (d.kind === 'fail') this.request = 'failed';
    else if (d.kind === 'route' && this.opts.bodyMode === 'streamed' && this.bodyExpected) this.request = 'relaying';
    else this.request = 'complete';
    if (d.kind !== 'fail') this.opts.metrics.eppLatency(performance.now() - this.started);
    this.resolveDecision(d);
  }

  /** The request body is still relayed by the EPP (streamed mode): a late answer goes to the relay. */
  private relayOpen(): boolean {
    return this.request === 'relaying' || this.request === 'duplex';
  }

  private deliverLate(a: LateAnswer): void {
    if (this.late) this.late(a);
    else this.lateHeld = a;
  }

  /** A failure at any point: resolves whatever is waiting, and drops the stream. */
  private fail(reason: EppFailureReason, detail: string): void {
    const f: FailDecision = { kind: 'fail', reason, detail };
    const waiter = this.takeResponseWaiter();
    const wasDecided = this.decided !== undefined;
    const relayOpen = this.relayOpen();
    this.cancel();
    if (!wasDecided) this.decide(f);
    else if (waiter) waiter(f);
    else if (relayOpen) {
      this.request = 'failed';
      this.deliverLate(f);
    }
  }

  private takeResponseWaiter(): ((r: ResponsePhaseResult) => void) | undefined {
    const w = this.responseWaiter;
    this.responseWaiter = undefined;
    if (w) this.response = 'complete';
    return w;
  }

  private onError(e: { code: number; details?: string; message: string }): void {
    if (this.local !== 'open' && e.code === GrpcStatus.CANCELLED) {
      this.markClosed();
      return;
    }
    const reason: EppFailureReason =
      e.code === GrpcStatus.UNAVAILABLE && this.request === 'awaiting-headers' ? 'epp_unavailable' : e.code === GrpcStatus.DEADLINE_EXCEEDED ? 'epp_timeout' : 'epp_grpc_error';
    this.fail(reason, `gRPC ${GrpcStatus[e.code] ?? e.code}: ${e.details ?? e.message}`);
    this.markClosed();
  }

  private onEnd(): void {
    const wasOpen = this.remote === 'open';
    this.remote = 'closed-ok';
    if (this.local === 'open') {
      // The EPP closed with OK. Before its decision that means "no endpoint".
      if (!this.decided) this.fail('epp_closed', 'the EPP closed the stream before answering');
      else if (this.response === 'awaiting-headers') this.takeResponseWaiter()?.({ kind: 'continue', mutations: [] });
      // Envoy: a processor that closes with OK is ignored from then on; release what it holds.
      else if (this.relayOpen()) this.releaseAllPending();
    }
    if (wasOpen) this.closedBookkeeping();
  }

  private markClosed(): void {
    if (this.remote !== 'open') return;
    this.remote = 'closed';
    this.closedBookkeeping();
  }

  private closedBookkeeping(): void {
    lingering.delete(this);
    this.clearTimer();
    this.opts.metrics.eppStreamClosed();
  }

  private onMessage(m: ProcessingResponse): void {
    if (this.local !== 'open') return;
    if (m.dynamic_metadata) {
      const v = metadataEndpoint(m.dynamic_metadata);
      if (v !== undefined) this.metadataValue = v;
    }
    switch (m.response) {
      case 'immediate_response':
        return this.onImmediate(immediateFrom(m.immediate_response ?? {}));
      case 'request_headers':
        if (this.request !== 'awaiting-headers') return this.fail('epp_protocol_error', 'second request_headers answer');
        this.takeCommon(m.request_headers?.response);
        this.headerValue ??= headerEndpoint(m.request_headers?.response?.header_mutation);
        // Buffered with a body: the pick is taken with the body's answer, which is owed now.
        if (this.opts.bodyMode === 'buffered' && this.bodyExpected) this.request = 'awaiting-body';
        else this.decideRoute();
        break;
      case 'request_body':
        if (this.request === 'awaiting-headers') return this.fail('epp_protocol_error', 'request_body answer before request_headers');
        if (this.opts.bodyMode === 'buffered') {
          if (this.request === 'awaiting-body') {
            this.takeCommon(m.request_body?.response);
            this.decideRoute();
          } else if (this.bodyExpected) return this.fail('epp_protocol_error', 'second request_body answer in buffered mode');
          // else: no body was sent; a spurious body answer changes nothing.
        } else if (this.opts.bodyMode === 'streamed') {
          this.streamedBody(m.request_body?.response);
        } else {
          return this.fail('epp_protocol_error', 'request_body answer in body mode none');
        }
        break;
      case 'request_trailers':
        break;
      case 'response_headers': {
        const w = this.takeResponseWaiter();
        if (!w) return this.fail('epp_protocol_error', 'response_headers answer without a response phase');
        const hm = m.response_headers?.response?.header_mutation;
        w({ kind: 'continue', mutations: hm ? [hm] : [] });
        this.arm();
        return;
      }
      default:
        return this.fail('epp_protocol_error', `unexpected answer ${m.response ?? '(empty oneof)'}`);
    }
    this.arm();
  }

  /**
   * An ImmediateResponse answers the client in place of the upstream, at any phase still open:
   * before the decision, in the response-headers phase, and (as Envoy does in
   * FULL_DUPLEX_STREAMED) while the request body is still relayed, upstream request or not.
   */
  private onImmediate(d: ImmediateDecision): void {
    if (!this.decided) {
      this.cancel();
      this.decide(d);
      return;
    }
    const w = this.takeResponseWaiter();
    if (w) {
      this.cancel();
      w(d);
      return;
    }
    if (this.relayOpen()) {
      this.cancel();
      this.request = 'complete';
      this.deliverLate(d);
      return;
    }
    this.fail('epp_protocol_error', 'immediate_response after the request was sent upstream');
  }

  private takeCommon(c: CommonResponse | undefined): void {
    if (!c) return;
    if (c.header_mutation) this.mutations.push(c.header_mutation);
    const bm = c.body_mutation;
    if (bm && this.opts.bodyMode === 'buffered') {
      if (bm.mutation === 'body' || bm.body !== undefined) this.bodyReplacement = bm.body ?? Buffer.alloc(0);
      else if (bm.mutation === 'clear_body' || bm.clear_body) this.bodyReplacement = Buffer.alloc(0);
    }
  }

  /** The request phases the pick depends on are answered: route, or fail for a missing or bad pick. */
  private decideRoute(): void {
    const h = this.headerValue;
    const md = this.metadataValue;
    let raw: string;
    if (md !== undefined && h !== undefined && md !== h) {
      this.opts.log.warn({ event: 'endpoint_disagreement', header: h, metadata: md }, 'EPP header and metadata endpoints differ; metadata wins');
      raw = md;
    } else if (md !== undefined) raw = md;
    else if (h !== undefined) raw = h;
    else return this.fail('endpoint_missing', 'the EPP answered without x-gateway-destination-endpoint');
    const list = parseEndpointList(raw, this.opts.allow);
    if (list.endpoints.length === 0) {
      if (list.refused.length > 0) return this.fail('endpoint_not_allowed', `outside the allowlist: ${list.refused.join(',')}`);
      return this.fail('endpoint_invalid', `not an ip:port list: ${JSON.stringify(raw.slice(0, 200))}`);
    }
    if (list.invalid.length > 0 || list.refused.length > 0) {
      this.opts.log.warn({ event: 'endpoint_entries_dropped', invalid: list.invalid, refused: list.refused }, 'some EPP endpoints dropped');
    }
    const d: RouteDecision = { kind: 'route', endpoints: list.endpoints, raw, mutations: this.mutations };
    if (this.bodyReplacement !== undefined) d.bodyReplacement = this.bodyReplacement;
    this.decide(d);
  }

  // Streamed (full-duplex) body answers: a streamed_response carries the bytes to send
  // upstream (the processor owns the body from then on); a plain answer releases the oldest
  // chunk sent, a `body` mutation replaces it, clear_body drops it.
  private streamedBody(c: CommonResponse | undefined): void {
    if (!this.relayOpen()) return; // the body already ended upstream: nothing left to relay
    const bm = c?.body_mutation;
    if (bm?.mutation === 'streamed_response' || bm?.streamed_response) {
      this.request = 'duplex';
      this.ownedByEpp = true;
      this.pending.length = 0;
      const sr = bm.streamed_response ?? {};
      if (sr.body && sr.body.length > 0) this.emit(sr.body);
      if (sr.end_of_stream) this.endBody();
      return;
    }
    if (this.request === 'duplex') return;
    const next = this.pending.shift();
    if (next === undefined) return;
    if (bm?.mutation === 'body' || bm?.body !== undefined) this.emit(bm.body ?? Buffer.alloc(0));
    else if (!(bm?.mutation === 'clear_body' || bm?.clear_body)) this.emit(next);
    if (this.pending.length === 0 && this.clientEnded) this.endBody();
  }

  private releaseAllPending(): void {
    if (this.request === 'duplex') {
      this.endBody();
      return;
    }
    for (const c of this.pending.splice(0)) this.emit(c);
    if (this.clientEnded) this.endBody();
    else this.request = 'pass-through';
  }

  private emit(c: Buffer): void {
    if (c.length === 0) return;
    if (this.sink) this.sink(c);
    else this.early.push(c);
  }

  private endBody(): void {
    if (this.request === 'complete' || this.request === 'bypassed') return;
    this.request = 'complete';
    if (this.sink) this.sink(null);
    else this.early.push(null);
  }
}
