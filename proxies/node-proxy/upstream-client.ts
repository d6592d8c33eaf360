// node-proxy's HTTP/1.1 client to the endpoints: undici's Agent (llhttp compiled to wasm, one
// keep-alive pool per endpoint, an idle socket checked for a pending close before it is reused)
// driven through its dispatch API. It replaced node:http's Agent because on this machine it costs
// about 40 µs less CPU per request at 1,000 req/s (docs/BENCHMARKS.md, seventh pass), and because
// it frames request bodies itself and never writes past a content-length.
//
// One UpstreamCall per attempt, with its state explicit: queued (waiting for a connection) →
// sending (a connection took it; the body may flow) → head (response head read, body held) →
// body (delivered to a sink) → done; or failed / aborted from any of them.
import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Endpoint } from './endpoint.ts';
import { HOP_BY_HOP } from './proxy-headers.ts';

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  /** Largest response head accepted (the server side's limit, for symmetry). */
  maxHeaderBytes: number;
}

/** What the request carries: nothing, bytes known now, or a stream fed through the call. */
export type UpstreamBody = { kind: 'none' } | { kind: 'buffer'; bytes: Buffer } | { kind: 'stream' };

export interface UpstreamRequest {
  method: string;
  path: string;
  /** Flat [name, value, …], end-to-end headers only (see `sendableHeaders`). */
  headers: string[];
  body: UpstreamBody;
}

export interface UpstreamHead {
  status: number;
  statusMessage: string;
  /** Flat [name, value, …] as received, names as sent. */
  rawHeaders: string[];
}

/**
 * Where a call failed. `connect`: no connection took it (the next endpoint may be tried);
 * `request`: after a connection took it, before a response head; `response`: mid-body;
 * `invalid`: the request could not be sent at all (a path or header HTTP/1.1 cannot carry).
 */
export type UpstreamPhase = 'connect' | 'request' | 'response' | 'invalid';

export interface UpstreamEvents {
  /** A connection took the request: a streamed body may flow from now on. */
  sending(): void;
  /** The final response head (1xx are skipped). The body waits for `deliver`. */
  response(head: UpstreamHead): void;
  failed(phase: UpstreamPhase, err: Error & { code?: string }): void;
}

/** The client response the body is copied into (http.ServerResponse fits). */
export interface ResponseSink {
  write(chunk: Buffer): boolean;
  end(): unknown;
  once(event: 'drain', fn: () => void): unknown;
}

// undici refuses these in a request: it writes framing and connection management itself, and
// node answered a client's Expect: 100-continue already (the upstream gets the body at once).
const NOT_SENDABLE: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'expect']);

/**
 * The headers undici will accept, from an end-to-end list that an EPP may have mutated (its
 * mutations can add back what endToEnd took out): framing, connection and Expect headers out
 * (undici frames the body: a length for bytes, chunked for a stream), one Host (the first).
 * Content-Length stays: undici checks it against the body.
 */
export function sendableHeaders(entries: ReadonlyArray<readonly [string, string]>): string[] {
  const out: string[] = [];
  let host = false;
  for (const [k, v] of entries) {
    const lk = k.toLowerCase();
    if (NOT_SENDABLE.has(lk)) continue;
    if (lk === 'host') {
      if (host) continue;
      host = true;
    }
    out.push(k, v);
  }
  return out;
}

const INVALID_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/** A request body fed by the proxy: `write` answers false when the consumer wants a pause. */
class BodyStream extends Readable {
  onPull: (() => void) | undefined;
  constructor() {
    super({ highWaterMark: 64 * 1024 });
  }
  override _read(): void {
    const pull = this.onPull;
    this.onPull = undefined;
    pull?.();
  }
}

type CallState = 'queued' | 'sending' | 'head' | 'body' | 'done' | 'failed' | 'aborted';

export class UpstreamCall implements Dispatcher.DispatchHandler {
  private state: CallState = 'queued';
  private controller: Dispatcher.DispatchController | undefined;
  private sink: ResponseSink | undefined;
  private ended = false;
  private readonly stream: BodyStream | undefined;
  private readonly resumeOnDrain = (): void => this.controller?.resume();
  private readonly events: UpstreamEvents;
  private readonly request: UpstreamRequest;
  private readonly origin: string;

  constructor(origin: string, request: UpstreamRequest, events: UpstreamEvents) {
    this.origin = origin;
    this.request = request;
    this.events = events;
    if (request.body.kind === 'stream') this.stream = new BodyStream();
  }

  /** Hands the call to the dispatcher; every outcome comes back through the events. */
  start(dispatcher: Dispatcher): void {
    const r = this.request;
    const body = r.body.kind === 'buffer' ? r.body.bytes : r.body.kind === 'stream' ? (this.stream as BodyStream) : null;
    dispatcher.dispatch({ origin: this.origin, method: r.method, path: r.path, headers: r.headers, body }, this);
  }

  /** True once the response completed, failed or was aborted: nothing more will happen. */
  get settled(): boolean {
    return this.state === 'done' || this.state === 'failed' || this.state === 'aborted';
  }

  /** Streamed body: false means wait for `onDrain` before writing more. */
  write(chunk: Buffer): boolean {
    if (!this.stream || this.settled) return true;
    return this.stream.push(chunk);
  }

  /** Called once, the next time the body stream wants more. */
  onDrain(fn: () => void): void {
    if (this.stream) this.stream.onPull = fn;
  }

  endBody(): void {
    if (this.stream && !this.settled && !this.stream.readableEnded) this.stream.push(null);
  }

  /** Copies the held response body into `sink`, with back-pressure, and ends it. */
  deliver(sink: ResponseSink): void {
    if (this.state !== 'head') return;
    this.state = 'body';
    this.sink = sink;
    if (this.ended) {
      this.state = 'done';
      sink.end();
      return;
    }
    if (this.controller?.paused) this.controller.resume();
  }

  /** Cancels the call wherever it is; no event follows. Closes its connection if it had one. */
  abort(): void {
    if (this.settled) return;
    this.state = 'aborted';
    this.stream?.destroy();
    // Queued: undici has no handle yet; `onRequestStart` aborts it when a connection takes it.
    this.controller?.abort(new Error('aborted by the proxy'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.state === 'aborted') {
      controller.abort(new Error('aborted by the proxy'));
      return;
    }
    this.state = 'sending';
    this.events.sending();
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, _headers: unknown, statusMessage?: string): void {
    if (this.state !== 'sending' || status < 200) return;
    this.state = 'head';
    const raw = controller.rawHeaders as unknown as Array<Buffer | string> | null;
    const rawHeaders: string[] = [];
    if (raw) for (const h of raw) rawHeaders.push(typeof h === 'string' ? h : h.toString('latin1'));
    this.events.response({ status, statusMessage: statusMessage ?? '', rawHeaders });
    // Held (the EPP is asked about the response head first): the parser waits.
    if (this.state === 'head') controller.pause();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.state !== 'body') return;
    const sink = this.sink as ResponseSink;
    if (!sink.write(chunk)) {
      controller.pause();
      sink.once('drain', this.resumeOnDrain);
    }
  }

  onResponseEnd(): void {
    if (this.state === 'head') {
      this.ended = true;
      return;
    }
    if (this.state !== 'body') return;
    this.state = 'done';
    this.sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error & { code?: string }): void {
    if (this.settled) return;
    const was = this.state;
    this.state = 'failed';
    this.stream?.destroy();
    const phase: UpstreamPhase =
      was === 'queued' ? (INVALID_CODES.has(err.code ?? '') ? 'invalid' : 'connect') : was === 'sending' ? 'request' : 'response';
    this.events.failed(phase, err);
  }
}

export class UpstreamClient {
  private readonly agent: Agent;

  constructor(opts: UpstreamClientOptions) {
    this.agent = new Agent({
      connections: null,
      pipelining: 1,
      connect: { timeout: opts.connectTimeoutMs },
      maxHeaderSize: opts.maxHeaderBytes,
      // The proxy keeps its own response timer (upstreamTimeoutMs); a streaming body has none,
      // as before.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  /** A call to `ep`, not yet started: assign it, then `start()`. */
  call(ep: Endpoint, request: UpstreamRequest, events: UpstreamEvents): UpstreamCall {
    return new UpstreamCall(`http://${ep.text}`, request, events);
  }

  start(call: UpstreamCall): void {
    call.start(this.agent);
  }

  /** Closes every upstream connection now (in-flight calls fail). */
  destroy(): void {
    this.agent.destroy().catch(() => {});
  }
}
