// Shim mode: the NGINX Gateway Fabric sidecar's contract (facts file §4). The NJS handler
// sends the client's method, path, headers and whole body plus X-EPP-Host / X-EPP-Port; the
// shim asks that EPP and answers 200 with X-Gateway-Destination-Endpoint, the ImmediateResponse's
// status, or 500/504 with an empty body so the NJS side applies its own fail-open/close.
// Unlike the original sidecar, channels are pooled per EPP target, not opened per request.
import type * as http from 'node:http';
import { isIP } from 'node:net';
import { DESTINATION_ENDPOINT_HEADER } from '../../core/proto.ts';
import { EppExchange } from './epp-exchange.ts';
import { failCloseStatus, type Outcome, type ReasonCode } from './outcomes.ts';
import type { ProxyContext } from './proxy-context.ts';
import { extProcRequestHeaders } from './proxy-headers.ts';
import { hasRequestBody, sendLocal } from './proxy-request.ts';

const SHIM_HEADERS: ReadonlySet<string> = new Set(['x-epp-host', 'x-epp-port']);

function eppAddress(host: string, port: string): string | undefined {
  const h = host.trim();
  if (!/^[0-9]{1,5}$/.test(port.trim()) || Number(port) < 1 || Number(port) > 65535) return undefined;
  if (h === '' || /[\s/?#@]/.test(h)) return undefined;
  return isIP(h) === 6 ? `[${h}]:${Number(port)}` : `${h}:${Number(port)}`;
}

export class ShimRequest {
  private readonly ctx: ProxyContext;
  private readonly req: http.IncomingMessage;
  private readonly res: http.ServerResponse;
  private readonly t0 = performance.now();
  private finished = false;
  private ex: EppExchange | undefined;
  private epp: string | undefined;

  constructor(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    ctx.metrics.data.active.requests++;
  }

  run(): void {
    const { req, res, ctx } = this;
    const route = ctx.shimRoute.route;
    res.on('close', () => {
      if (!this.finished && !res.writableFinished) this.done('client_abort', 'client_abort', 499);
    });
    req.on('error', () => this.done('client_abort', 'client_abort', 499));
    const host = req.headers['x-epp-host'];
    const port = req.headers['x-epp-port'];
    if (typeof host !== 'string' || typeof port !== 'string') {
      return this.answer(400, 'shim_missing_epp', 'rejected', 'X-EPP-Host and X-EPP-Port are required');
    }
    const address = eppAddress(host, port);
    if (!address) return this.answer(400, 'shim_missing_epp', 'rejected', `bad X-EPP-Host/X-EPP-Port: ${host}:${port}`);
    this.epp = address;
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) > route.maxBodyBytes) return this.answer(413, 'body_too_large', 'rejected', `content-length ${cl}`);

    const hasBody = hasRequestBody(req);
    const ex = new EppExchange(ctx.channels.client(address, route.eppTls), {
      timeoutMs: route.timeoutMs,
      bodyMode: 'buffered',
      allow: ctx.shimRoute.allow,
      metrics: ctx.metrics,
      log: ctx.log,
      responseProcessing: false,
      ...(route.subsetHint ? { subsetHint: route.subsetHint } : {}),
    });
    this.ex = ex;
    ex.sendHeaders(extProcRequestHeaders(req, 'http', SHIM_HEADERS), !hasBody);
    let bodyRead: Promise<void> = Promise.resolve();
    if (hasBody) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        if (this.finished) return;
        bytes += c.length;
        if (bytes > route.maxBodyBytes) return this.answer(413, 'body_too_large', 'rejected', `body over ${route.maxBodyBytes} bytes`);
        chunks.push(c);
      });
      bodyRead = new Promise((resolve) =>
        req.on('end', () => {
          if (!this.finished) ex.sendBody(Buffer.concat(chunks), true);
          resolve();
        }),
      );
    }
    Promise.all([ex.decision, bodyRead]).then(([d]) => {
      if (this.finished) return;
      ex.finish();
      if (d.kind === 'route') {
        const value = d.endpoints.map((e) => e.text).join(',');
        this.done('picked', 'ok', 200, { endpoint: value });
        sendLocal(res, 200, [[DESTINATION_ENDPOINT_HEADER, value]], '');
      } else if (d.kind === 'immediate') {
        this.done('immediate', 'immediate_response', d.status);
        sendLocal(res, d.status, d.headers, d.body);
      } else {
        this.ctx.log.warn({ event: 'epp_failure', reason: d.reason, detail: d.detail, epp: address });
        this.answer(failCloseStatus(d.reason), d.reason, 'epp_failure', d.detail);
      }
    });
  }

  private answer(status: number, reason: ReasonCode, outcome: Outcome, detail: string): void {
    if (this.finished) return;
    this.done(outcome, reason, status, { detail });
    if (!this.req.readableEnded) {
      this.res.shouldKeepAlive = false;
      this.req.resume();
    }
    // Empty body: the NJS side only looks at the status.
    sendLocal(this.res, status, [], '', reason);
  }

  private done(outcome: Outcome, reason: ReasonCode, status: number, extra?: Record<string, unknown>): void {
    if (this.finished) return;
    this.finished = true;
    this.ctx.metrics.data.active.requests--;
    if (outcome === 'picked' || outcome === 'immediate') this.ex?.finish();
    else this.ex?.cancel();
    this.ctx.metrics.request(outcome, reason, status);
    const line = {
      event: 'shim_request',
      outcome,
      reason,
      status,
      epp: this.epp,
      method: this.req.method,
      ms: Math.round((performance.now() - this.t0) * 100) / 100,
      ...extra,
    };
    if (outcome === 'picked' || outcome === 'immediate') this.ctx.log.info(line);
    else this.ctx.log.warn(line);
  }
}
