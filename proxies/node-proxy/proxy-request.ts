// One client request through the proxy: ask the EPP, then forward to the endpoint it picked
// (or answer for it), streaming the response back. Every path through here ends in exactly
// one call of `done()`: one log line, one metric.
import type * as http from 'node:http';
import type { HeaderMutation } from '../../core/proto.ts';
import type { BbrOptions } from '../../core/route-model.ts';
import { describeOutcome, scanModel } from '../../core/bbr-model.ts';
import type { Endpoint } from './endpoint.ts';
import { EppExchange, type Decision, type FailDecision, type ImmediateDecision, type LateAnswer } from './epp-exchange.ts';
import { failCloseStatus, type Outcome, type ReasonCode } from './outcomes.ts';
import { fallbackOrder, type CompiledRoute, type ProxyContext } from './proxy-context.ts';
import { endToEnd, extProcRequestHeaders, extProcResponseHeaders, HeaderList } from './proxy-headers.ts';
import { sendableHeaders, type UpstreamBody, type UpstreamCall, type UpstreamHead } from './upstream-client.ts';

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);
const NO_BODY: UpstreamBody = { kind: 'none' };
const STREAM_BODY: UpstreamBody = { kind: 'stream' };

type BodyKind = 'none' | 'buffer' | 'pipe' | 'epp';

export function hasRequestBody(req: http.IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Sends a response the proxy generates itself; hop-by-hop-safe and always with a length. */
export function sendLocal(res: http.ServerResponse, status: number, headers: Array<[string, string]>, body: Buffer | string, reason?: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const flat: string[] = [];
  for (const [k, v] of headers) {
    const lk = k.toLowerCase();
    if (lk === 'content-length' || lk === 'transfer-encoding' || lk === 'connection' || lk.startsWith(':')) continue;
    // A header the EPP sent that HTTP cannot carry (a control byte in its value, a name that is
    // not a token) is left out, as Envoy ignores an invalid mutation: Node's writeHead would
    // throw and the client would see a reset instead of the EPP's answer (fuzz finding).
    if (/[^\t\x20-\x7e\x80-\xff]/.test(v) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) continue;
    flat.push(k, v);
  }
  if (reason) flat.push('x-eppkit-reason', reason);
  flat.push('content-length', String(b.length));
  try {
    res.writeHead(status, flat);
    res.end(b);
  } catch {
    res.destroy();
  }
}

/** Sets a request header in place (every copy of it replaced), before headers are read. */
function setHeader(req: http.IncomingMessage, name: string, value: string): void {
  const lower = name.toLowerCase();
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() !== lower) out.push(raw[i] as string, raw[i + 1] as string);
  out.push(name, value);
  req.rawHeaders = out;
}

export class ProxyRequest {
  private readonly ctx: ProxyContext;
  private readonly cr: CompiledRoute;
  private readonly req: http.IncomingMessage;
  private readonly res: http.ServerResponse;
  private readonly t0 = performance.now();
  private ex: EppExchange | undefined;
  private upstream: UpstreamCall | undefined;
  /** No response head within upstreamTimeoutMs. */
  private upstreamTimer: NodeJS.Timeout | undefined;
  private upstreamActive = false;
  private finished = false;
  private eppBodyPending = false;
  private eppResponsePending = false;
  /** Streamed mode after an EPP failure with fail-open: the client body bypasses the EPP. */
  private bypassing = false;
  private bodyBytes = 0;
  private endpoint: string | undefined;
  private eppMs: number | undefined;
  private readonly hasBody: boolean;
  /** The whole client body, read before the EPP call for body-based routing. */
  private preread: Buffer | undefined;

  constructor(ctx: ProxyContext, cr: CompiledRoute, req: http.IncomingMessage, res: http.ServerResponse) {
    this.ctx = ctx;
    this.cr = cr;
    this.req = req;
    this.res = res;
    this.hasBody = hasRequestBody(req);
    ctx.metrics.data.active.requests++;
  }

  run(): void {
    const { req, res, cr } = this;
    const route = cr.route;
    res.on('close', () => {
      if (!this.finished && !res.writableFinished) this.onClientAbort();
    });
    req.on('error', () => {
      if (!this.finished) this.onClientAbort();
    });
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) > route.maxBodyBytes) {
      this.reject(413, 'body_too_large', `content-length ${cl} > ${route.maxBodyBytes}`);
      return;
    }
    if (route.bbr && this.hasBody) this.readForBbr(route.bbr);
    else this.startEpp(undefined);
  }

  /**
   * Body-based routing: the whole body first, its top-level `model` into the BBR header (a
   * client's own copy replaced), then the EPP call with that header and the same bytes.
   */
  private readForBbr(bbr: BbrOptions): void {
    const { req } = this;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      if (this.countBody(c)) chunks.push(c);
    });
    req.on('end', () => {
      if (this.finished) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      chunks.length = 0;
      const o = scanModel(body, bbr.maxBodyBytes);
      // Header strings travel as latin1: the model's UTF-8 bytes go out unchanged.
      if (o.status === 'ok') setHeader(req, bbr.header, Buffer.from(o.model, 'utf8').toString('latin1'));
      else if (o.status !== 'no_body') {
        const detail = describeOutcome(o, bbr.maxBodyBytes);
        if (bbr.requireModel) {
          this.reject(o.status === 'too_large' ? 413 : 400, 'bbr_no_model', detail);
          return;
        }
        this.ctx.log.info({ event: 'bbr_no_model', status: o.status, detail, header: bbr.header });
      }
      this.preread = body;
      this.startEpp(body);
    });
  }

  /** The EPP exchange; `preread` = the body, already read whole (BBR). */
  private startEpp(preread: Buffer | undefined): void {
    const { req, cr } = this;
    const route = cr.route;
    const ex = new EppExchange(this.ctx.channels.client(route.eppAddress, route.eppTls), {
      timeoutMs: route.timeoutMs,
      bodyMode: route.bodyMode,
      allow: cr.allow,
      metrics: this.ctx.metrics,
      log: this.ctx.log,
      responseProcessing: route.responseProcessing,
      ...(route.subsetHint ? { subsetHint: route.subsetHint } : {}),
    });
    this.ex = ex;
    const sendsBody = route.bodyMode !== 'none' && this.hasBody;
    ex.sendHeaders(extProcRequestHeaders(req, 'http'), !this.hasBody);

    let buffered: Buffer | undefined;
    let bodyRead: Promise<void> = Promise.resolve();
    if (preread !== undefined) {
      // Both body modes: the same bytes in one message (streamed: the EPP relays them back).
      buffered = preread;
      if (sendsBody) ex.sendBody(preread, true);
    } else if (sendsBody && route.bodyMode === 'buffered') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => {
        if (!this.countBody(c)) return;
        chunks.push(c);
      });
      // The decision is acted on only once the whole body is here (fail-open forwards it).
      bodyRead = new Promise((resolve) => {
        req.on('end', () => {
          if (this.finished) return;
          buffered = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
          chunks.length = 0;
          ex.sendBody(buffered, true);
          resolve();
        });
      });
    } else if (sendsBody) {
      // Streamed: each chunk goes to the EPP as it arrives; the EPP's answers carry it upstream.
      req.on('data', (c: Buffer) => {
        if (this.bypassing || !this.countBody(c) || c.length === 0) return;
        ex.sendBody(c, false);
      });
      req.on('end', () => {
        if (!this.finished && !this.bypassing) ex.sendBody(Buffer.alloc(0), true);
      });
    }

    // An answer of the EPP's own (immediate, fail-close) goes out at once; proxying waits for
    // the whole buffered body.
    ex.decision
      .then((d) => {
        const proxies = d.kind === 'route' || (d.kind === 'fail' && route.failureMode === 'open');
        return proxies ? bodyRead.then(() => this.onDecision(d, () => buffered)) : this.onDecision(d, () => buffered);
      })
      .catch((e: unknown) => this.internalError(e));
  }

  /** Counts request body bytes; answers 413 and returns false over the route's limit. */
  private countBody(c: Buffer): boolean {
    if (this.finished) return false;
    this.bodyBytes += c.length;
    if (this.bodyBytes > this.cr.route.maxBodyBytes) {
      this.ex?.cancel();
      this.upstream?.abort();
      this.reject(413, 'body_too_large', `body over ${this.cr.route.maxBodyBytes} bytes`);
      return false;
    }
    return true;
  }

  private onDecision(d: Decision, body: () => Buffer | undefined): void {
    if (this.finished) return;
    this.eppMs = performance.now() - this.t0;
    const route = this.cr.route;
    switch (d.kind) {
      case 'immediate':
        this.ex?.finish();
        this.immediate(d);
        return;
      case 'fail':
        this.onEppFailure(d, body);
        return;
      case 'route': {
        // The EPP stream stays open while it relays a streamed body or owes the response phase.
        this.eppBodyPending = route.bodyMode === 'streamed' && this.hasBody;
        this.eppResponsePending = route.responseProcessing;
        this.maybeFinishEpp();
        this.forward(d.endpoints, 'routed', d.mutations, route.bodyMode === 'buffered' ? (d.bodyReplacement ?? body()) : undefined);
      }
    }
  }

  private onEppFailure(f: FailDecision, body: () => Buffer | undefined): void {
    const route = this.cr.route;
    this.ex?.cancel();
    this.ctx.log.warn({ event: 'epp_failure', reason: f.reason, detail: f.detail, epp: route.eppAddress, failureMode: route.failureMode });
    if (route.failureMode === 'close') {
      this.reject(failCloseStatus(f.reason), f.reason, f.detail, 'epp_failure');
      return;
    }
    const order = fallbackOrder(this.cr);
    if (order.length === 0) {
      this.reject(503, 'no_fallback', `EPP failed (${f.reason}) and the route has no fallback endpoints`, 'epp_failure');
      return;
    }
    this.failReason = f.reason;
    this.forward(order, 'fallback', [], route.bodyMode === 'buffered' ? body() : undefined);
  }

  private failReason: ReasonCode | undefined;

  private immediate(d: ImmediateDecision): void {
    // The request body is not needed any more; read it off the socket so keep-alive can continue.
    this.req.resume();
    this.done('immediate', 'immediate_response', d.status, d.details ? { details: d.details } : undefined);
    sendLocal(this.res, d.status, d.headers, d.body);
  }

  /** Builds the upstream request head once; tries each endpoint in order on connect failure. */
  private forward(endpoints: Endpoint[], outcome: Outcome, mutations: HeaderMutation[], payload: Buffer | undefined): void {
    const { req } = this;
    const route = this.cr.route;
    // The client body was read for BBR: send those bytes wherever the socket would be piped.
    if (payload === undefined && this.preread !== undefined && !(route.bodyMode === 'streamed' && outcome === 'routed')) payload = this.preread;
    const headers = new HeaderList(endToEnd(req.rawHeaders));
    const pseudo = new Map<string, string>();
    for (const m of mutations) headers.apply(m, pseudo);
    const xff = headers.get('x-forwarded-for');
    const peer = req.socket.remoteAddress ?? '';
    headers.set('x-forwarded-for', xff ? `${xff}, ${peer}` : peer);
    headers.set('x-forwarded-proto', 'http');
    const authority = pseudo.get(':authority');
    if (authority) headers.set('host', authority);
    const path = pseudo.get(':path') ?? req.url ?? '/';
    let bodyKind: BodyKind;
    if (payload !== undefined) {
      bodyKind = 'buffer';
      headers.remove('content-length');
      if (payload.length > 0 || this.hasBody) headers.set('content-length', String(payload.length));
    } else if (!this.hasBody) bodyKind = 'none';
    else if (route.bodyMode === 'streamed' && outcome === 'routed') {
      // The EPP may rewrite the body chunk by chunk: the length is unknown (Envoy does the same).
      bodyKind = 'epp';
      headers.remove('content-length');
    } else bodyKind = 'pipe';
    // A streamed body without a length goes chunked, whatever the method (undici frames it; a
    // GET's body once went out unframed: found by eppkit fuzz).
    const body: UpstreamBody = bodyKind === 'none' ? NO_BODY : bodyKind === 'buffer' ? { kind: 'buffer', bytes: payload as Buffer } : STREAM_BODY;
    this.attempt(endpoints, 0, outcome, sendableHeaders(headers.entries), path, body, bodyKind);
  }

  private attempt(endpoints: Endpoint[], i: number, outcome: Outcome, headers: string[], path: string, body: UpstreamBody, bodyKind: BodyKind): void {
    if (this.finished) return;
    const ep = endpoints[i] as Endpoint;
    this.endpoint = ep.text;
    const tUp = performance.now();
    const call = this.ctx.upstream.call(
      ep,
      { method: this.req.method ?? 'GET', path, headers, body },
      {
        sending: () => {
          if (this.finished) return;
          const limit = this.ctx.config.upstreamTimeoutMs;
          if (limit > 0) {
            this.upstreamTimer = setTimeout(() => {
              call.abort();
              this.upstreamFailed(504, 'upstream_timeout', `${ep.text}: no response headers within ${limit} ms`);
            }, limit);
          }
          this.writeBody(call, bodyKind);
        },
        response: (head) => {
          clearTimeout(this.upstreamTimer);
          this.ctx.metrics.upstreamLatency(performance.now() - tUp);
          void this.onUpstreamResponse(head, call, ep, outcome);
        },
        failed: (phase, e) => {
          clearTimeout(this.upstreamTimer);
          if (this.finished) return;
          const code = e.code ?? '';
          if (phase === 'connect' && CONNECT_ERRORS.has(code)) {
            this.ctx.log.warn({ event: 'upstream_connect_failed', endpoint: ep.text, code, next: endpoints[i + 1]?.text });
            if (i + 1 < endpoints.length) return this.attempt(endpoints, i + 1, outcome, headers, path, body, bodyKind);
            return this.upstreamFailed(502, 'upstream_connect_failed', `${ep.text}: ${code}`);
          }
          if (phase === 'invalid') {
            // The request as the client and the EPP's mutations left it cannot be written (a
            // path without a leading slash, a duplicate Content-Length): refused, not sent.
            return this.upstreamFailed(500, 'bad_upstream_request', `${ep.text}: ${e.message}`, 'rejected');
          }
          // A kept-alive connection that the backend closed as it was reused is not replayed:
          // undici checks an idle socket for a pending close before reusing it, and Envoy
          // does not retry by default either.
          if (phase === 'response' && this.res.headersSent) return this.upstreamBroke(ep);
          this.upstreamFailed(502, 'upstream_reset', `${ep.text}: ${code || e.message}`);
        },
      },
    );
    this.upstream = call;
    if (!this.upstreamActive) {
      this.upstreamActive = true;
      this.ctx.metrics.data.active.upstreamRequests++;
    }
    this.ctx.upstream.start(call);
  }

  /** Feeds a streamed body once a connection took the request (bytes go with the call itself). */
  private writeBody(call: UpstreamCall, bodyKind: BodyKind): void {
    const { req } = this;
    switch (bodyKind) {
      case 'none':
      case 'buffer':
        return;
      case 'pipe': {
        // In fail-open streamed mode, first the chunks the EPP still held.
        this.bypassing = true;
        for (const c of this.ex?.bypass() ?? []) call.write(c);
        if (req.readableEnded) {
          call.endBody();
          return;
        }
        const onData = (c: Buffer): void => {
          if (this.cr.route.bodyMode === 'none' && !this.countBody(c)) return;
          if (!call.write(c)) {
            req.pause();
            call.onDrain(() => req.resume());
          }
        };
        // Streamed mode already has a data listener counting bytes; none mode counts here.
        req.on('data', onData);
        req.once('end', () => call.endBody());
        req.resume();
        return;
      }
      case 'epp': {
        const ex = this.ex as EppExchange;
        ex.onBody(
          (c) => {
            if (c === null) {
              call.endBody();
              this.eppBodyPending = false;
              this.maybeFinishEpp();
            } else call.write(c);
          },
          (a) => this.onLateEppAnswer(a, call),
        );
      }
    }
  }

  /** Half-closes the EPP stream once it has nothing left to do for this request. */
  private maybeFinishEpp(): void {
    if (!this.eppBodyPending && !this.eppResponsePending) this.ex?.finish();
  }

  /** The EPP failed, or answered for the upstream, while it was relaying the streamed body. */
  private onLateEppAnswer(f: LateAnswer, call: UpstreamCall): void {
    if (this.finished) return;
    if (f.kind === 'immediate') {
      // As Envoy in FULL_DUPLEX_STREAMED: the local answer replaces the upstream request
      // (a reset if the upstream's response already started to the client).
      call.abort();
      this.immediate(f);
      return;
    }
    this.ctx.log.warn({ event: 'epp_failure', reason: f.reason, detail: f.detail, late: true });
    if (this.cr.route.failureMode === 'open' && !this.ex?.streamedBodyOwnedByEpp) {
      // Ignore the EPP from here on: send what it still held, then the rest of the client body.
      this.failReason = f.reason;
      this.writeBody(call, 'pipe');
      return;
    }
    call.abort();
    this.upstreamFailed(failCloseStatus(f.reason), f.reason, f.detail, 'epp_failure');
  }

  private async onUpstreamResponse(head: UpstreamHead, call: UpstreamCall, ep: Endpoint, outcome: Outcome): Promise<void> {
    const { res } = this;
    if (this.finished) {
      call.abort();
      return;
    }
    const status = head.status;
    const headers = new HeaderList(endToEnd(head.rawHeaders));
    const ex = this.ex;
    if (this.cr.route.responseProcessing && ex && outcome === 'routed') {
      const eos = headers.get('content-length') === '0' || status === 204 || status === 304 || this.req.method === 'HEAD';
      const r = await ex.responseHeaders(status, extProcResponseHeaders(head.rawHeaders), ep.text, eos);
      if (this.finished) {
        call.abort();
        return;
      }
      if (r.kind === 'immediate') {
        call.abort();
        this.immediate(r);
        return;
      }
      if (r.kind === 'fail') {
        if (this.cr.route.failureMode === 'close') {
          call.abort();
          this.upstreamFailed(failCloseStatus(r.reason), r.reason, r.detail, 'epp_failure');
          return;
        }
        this.ctx.log.warn({ event: 'epp_failure', reason: r.reason, detail: r.detail, phase: 'response_headers' });
      } else {
        const pseudo = new Map<string, string>();
        for (const m of r.mutations) headers.apply(m, pseudo);
      }
      this.eppResponsePending = false;
      this.maybeFinishEpp();
    }
    res.on('finish', () => {
      if (this.finished) return;
      const reason: ReasonCode = outcome === 'fallback' ? (this.failReason ?? 'ok') : 'ok';
      this.done(outcome, reason, status);
    });
    try {
      res.writeHead(status, head.statusMessage, headers.flat() as unknown as http.OutgoingHttpHeaders);
    } catch (e) {
      call.abort();
      this.upstreamFailed(502, 'upstream_reset', `bad upstream response head: ${(e as Error).message}`);
      return;
    }
    call.deliver(res);
  }

  /** The upstream broke mid-response: the client's response cannot be completed. */
  private upstreamBroke(ep: Endpoint): void {
    if (this.finished) return;
    this.done('upstream_failure', 'upstream_reset', this.res.statusCode, { endpoint: ep.text, midResponse: true });
    this.res.destroy();
  }

  private upstreamFailed(status: number, reason: ReasonCode, detail: string, outcome: Outcome = 'upstream_failure'): void {
    if (this.finished) return;
    this.ex?.cancel();
    this.reject(status, reason, detail, outcome);
  }

  private onClientAbort(): void {
    if (this.finished) return;
    this.ex?.cancel();
    this.upstream?.abort();
    this.done('client_abort', 'client_abort', 499);
  }

  private internalError(e: unknown): void {
    this.ctx.log.error({ event: 'internal_error', err: e });
    this.ex?.cancel();
    this.upstream?.abort();
    this.reject(500, 'internal_error', String(e));
  }

  /** A response the proxy makes up (error or refusal). */
  private reject(status: number, reason: ReasonCode, detail: string, outcome: Outcome = 'rejected'): void {
    if (this.finished) return;
    this.done(outcome, reason, status, { detail });
    const unread = !this.req.readableEnded;
    // A body over the limit is not read to its end: the connection closes after the answer.
    if (unread && reason === 'body_too_large') this.res.shouldKeepAlive = false;
    sendLocal(this.res, status, [['content-type', 'text/plain']], `${reason}\n`, reason);
    if (unread && reason !== 'body_too_large') this.discardBody();
    else if (unread) this.req.resume();
  }

  /**
   * The answer went out before the request body was read (an EPP failure in body mode none, a
   * fail-close answer that does not wait for the body): read the rest and drop it, so the
   * keep-alive connection goes on with the next request, as Envoy's does. Bounded by the
   * route's body limit; beyond it the connection closes.
   */
  private discardBody(): void {
    const limit = this.cr.route.maxBodyBytes;
    let seen = this.bodyBytes;
    const socket = this.req.socket;
    this.req.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen > limit) socket.destroySoon();
    });
    this.req.resume();
  }

  private done(outcome: Outcome, reason: ReasonCode, status: number, extra?: Record<string, unknown>): void {
    if (this.finished) return;
    this.finished = true;
    const m = this.ctx.metrics;
    m.data.active.requests--;
    if (this.upstreamActive) {
      this.upstreamActive = false;
      m.data.active.upstreamRequests--;
    }
    if (outcome === 'routed' || outcome === 'fallback' || outcome === 'immediate') this.ex?.finish();
    else this.ex?.cancel();
    clearTimeout(this.upstreamTimer);
    // Any call still in flight is dropped; one that completed (even before its request body
    // was all sent: an early answer) is left as it is.
    this.upstream?.abort();
    m.request(outcome, reason, status);
    const url = this.req.url ?? '';
    const line = {
      event: 'request',
      outcome,
      reason,
      status,
      method: this.req.method,
      path: url.length > 200 ? `${url.slice(0, 200)}…` : url,
      route: this.cr.route.pathPrefix,
      endpoint: this.endpoint,
      eppMs: this.eppMs === undefined ? undefined : Math.round(this.eppMs * 100) / 100,
      ms: Math.round((performance.now() - this.t0) * 100) / 100,
      ...extra,
    };
    if (outcome === 'routed' || outcome === 'immediate') this.ctx.log.info(line);
    else this.ctx.log.warn(line);
  }
}
