// The exchange's explicit states (one per direction, and the stream's two sides): every
// transition node-proxy relies on, driven by a fake call that records what was written.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { rawHeader } from '../../core/headers.ts';
import { silentLogger } from '../../core/logger.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../core/proto.ts';
import type { BodyMode } from '../../core/route-model.ts';
import { Allowlist } from './endpoint.ts';
import { EppExchange, type LateAnswer } from './epp-exchange.ts';
import { ProxyMetrics } from './proxy-metrics.ts';

class FakeCall extends EventEmitter {
  readonly written: ProcessingRequest[] = [];
  ended = false;
  cancelled = false;
  write(m: ProcessingRequest): void {
    this.written.push(m);
  }
  end(): void {
    this.ended = true;
  }
  cancel(): void {
    this.cancelled = true;
  }
}

const EP = '127.0.0.2:8000';
const pickAnswer = (): ProcessingResponse =>
  ({
    response: 'request_headers',
    request_headers: { response: { header_mutation: { set_headers: [{ header: rawHeader('x-gateway-destination-endpoint', EP) }] } } },
  }) as unknown as ProcessingResponse;
const bodyAnswer = (mutation?: object): ProcessingResponse => ({ response: 'request_body', request_body: { response: mutation ? { body_mutation: mutation } : {} } }) as unknown as ProcessingResponse;
const immediate = (code: number): ProcessingResponse => ({ response: 'immediate_response', immediate_response: { status: { code } } }) as unknown as ProcessingResponse;

function exchange(bodyMode: BodyMode, timeoutMs = 10_000): { ex: EppExchange; call: FakeCall; metrics: ProxyMetrics } {
  const call = new FakeCall();
  const metrics = new ProxyMetrics();
  const ex = new EppExchange({ Process: () => call } as never, { timeoutMs, bodyMode, allow: new Allowlist([]), metrics, log: silentLogger, responseProcessing: false });
  return { ex, call, metrics };
}

const HEADERS = [rawHeader(':method', 'POST'), rawHeader(':path', '/')];

/** Collects what the relay sends upstream (null = end) and the late answers. */
function relay(ex: EppExchange): { out: Array<string | null>; late: LateAnswer[] } {
  const out: Array<string | null> = [];
  const late: LateAnswer[] = [];
  ex.onBody(
    (c) => out.push(c === null ? null : c.toString()),
    (a) => late.push(a),
  );
  return { out, late };
}

describe('EppExchange states', () => {
  it('none: awaiting-headers → complete with the pick; finish half-closes, the EPP ends with OK', async () => {
    const { ex, call, metrics } = exchange('none');
    expect(ex.state).toEqual({ request: 'awaiting-headers', response: 'idle', local: 'open', remote: 'open' });
    ex.sendHeaders(HEADERS, false);
    // Body mode none says end_of_stream whatever the request has.
    expect(call.written[0]?.request_headers?.end_of_stream).toBe(true);
    call.emit('data', pickAnswer());
    expect(await ex.decision).toMatchObject({ kind: 'route', raw: EP });
    expect(ex.state.request).toBe('complete');
    ex.finish();
    expect(ex.state.local).toBe('half-closed');
    expect(call.ended).toBe(true);
    call.emit('end');
    expect(ex.state.remote).toBe('closed-ok');
    expect(metrics.data.active.eppStreams).toBe(0);
  });

  it('buffered: a headers answer before the body was sent waits in awaiting-body; the pick comes with the body answer', async () => {
    const { ex, call } = exchange('buffered');
    ex.sendHeaders(HEADERS, false);
    call.emit('data', pickAnswer());
    expect(ex.state.request).toBe('awaiting-body');
    let decided = false;
    void ex.decision.then(() => (decided = true));
    await new Promise((r) => setImmediate(r));
    expect(decided).toBe(false);
    ex.sendBody(Buffer.from('hello'), true);
    call.emit('data', bodyAnswer({ body: Buffer.from('HELLO') }));
    expect(await ex.decision).toMatchObject({ kind: 'route', bodyReplacement: Buffer.from('HELLO') });
    expect(ex.state.request).toBe('complete');
  });

  it('buffered: no body answer after the headers answer is an epp_timeout (Envoy: 504 on FailClose), not a route', async () => {
    const { ex, call } = exchange('buffered', 30);
    ex.sendHeaders(HEADERS, false);
    call.emit('data', pickAnswer());
    ex.sendBody(Buffer.from('hello'), true);
    expect(await ex.decision).toMatchObject({ kind: 'fail', reason: 'epp_timeout' });
    expect(ex.state).toMatchObject({ request: 'failed', local: 'cancelled' });
    expect(call.cancelled).toBe(true);
  });

  it('buffered: a second body answer is a protocol error; a body answer for a bodyless request changes nothing', async () => {
    const a = exchange('buffered');
    a.ex.sendHeaders(HEADERS, true);
    a.call.emit('data', pickAnswer());
    expect(await a.ex.decision).toMatchObject({ kind: 'route' });
    a.call.emit('data', bodyAnswer());
    expect(a.ex.state).toMatchObject({ request: 'complete', local: 'open' });
    const b = exchange('buffered');
    b.ex.sendHeaders(HEADERS, false);
    b.call.emit('data', bodyAnswer());
    expect(await b.ex.decision).toMatchObject({ kind: 'fail', reason: 'epp_protocol_error', detail: 'request_body answer before request_headers' });
  });

  it('streamed: relaying releases each chunk on its answer, then complete with the end', async () => {
    const { ex, call } = exchange('streamed');
    ex.sendHeaders(HEADERS, false);
    ex.sendBody(Buffer.from('a'), false);
    call.emit('data', pickAnswer());
    await ex.decision;
    expect(ex.state.request).toBe('relaying');
    const r = relay(ex);
    ex.sendBody(Buffer.from('b'), false);
    ex.sendBody(Buffer.alloc(0), true);
    call.emit('data', bodyAnswer());
    call.emit('data', bodyAnswer({ body: Buffer.from('B') }));
    expect(ex.state.request).toBe('relaying');
    call.emit('data', bodyAnswer());
    expect(r.out).toEqual(['a', 'B', null]);
    expect(ex.state.request).toBe('complete');
  });

  it('streamed: a streamed_response makes it duplex (the EPP owns the body) until its end_of_stream', async () => {
    const { ex, call } = exchange('streamed');
    ex.sendHeaders(HEADERS, false);
    call.emit('data', pickAnswer());
    await ex.decision;
    const r = relay(ex);
    ex.sendBody(Buffer.from('abc'), true);
    call.emit('data', bodyAnswer({ streamed_response: { body: Buffer.from('xy') } }));
    expect(ex.state.request).toBe('duplex');
    expect(ex.streamedBodyOwnedByEpp).toBe(true);
    call.emit('data', bodyAnswer()); // a plain answer is ignored once duplex
    call.emit('data', bodyAnswer({ streamed_response: { body: Buffer.from('z'), end_of_stream: true } }));
    expect(r.out).toEqual(['xy', 'z', null]);
    expect(ex.state.request).toBe('complete');
  });

  it('streamed: the EPP closing with OK mid-body releases what it held and lets the rest pass through', async () => {
    const { ex, call } = exchange('streamed');
    ex.sendHeaders(HEADERS, false);
    call.emit('data', pickAnswer());
    await ex.decision;
    const r = relay(ex);
    ex.sendBody(Buffer.from('a'), false);
    call.emit('end');
    expect(ex.state).toMatchObject({ request: 'pass-through', remote: 'closed-ok' });
    ex.sendBody(Buffer.from('b'), true);
    expect(r.out).toEqual(['a', 'b', null]);
    expect(ex.state.request).toBe('complete');
  });

  it('streamed: a failure while relaying is a late answer; bypass() hands back the held chunks', async () => {
    const { ex, call } = exchange('streamed');
    ex.sendHeaders(HEADERS, false);
    call.emit('data', pickAnswer());
    await ex.decision;
    const r = relay(ex);
    ex.sendBody(Buffer.from('a'), false);
    call.emit('error', { code: 13, details: 'boom', message: 'boom' });
    expect(r.late).toMatchObject([{ kind: 'fail', reason: 'epp_grpc_error' }]);
    expect(ex.state).toMatchObject({ request: 'failed', remote: 'closed' });
    expect(ex.bypass().map(String)).toEqual(['a']);
    expect(ex.state.request).toBe('bypassed');
    ex.sendBody(Buffer.from('b'), true); // ignored from now on
    expect(r.out).toEqual([]);
  });

  it('streamed: a late answer that comes before onBody() is held and delivered to it', async () => {
    const { ex, call } = exchange('streamed', 20);
    ex.sendHeaders(HEADERS, false);
    call.emit('data', pickAnswer());
    await ex.decision;
    ex.sendBody(Buffer.from('a'), true);
    await new Promise((r) => setTimeout(r, 60));
    const r = relay(ex);
    expect(r.late).toMatchObject([{ kind: 'fail', reason: 'epp_timeout' }]);
  });

  it('streamed: an ImmediateResponse after the headers answer, while the body is relayed, is a late immediate answer (not a protocol error)', async () => {
    const { ex, call } = exchange('streamed');
    ex.sendHeaders(HEADERS, false);
    ex.sendBody(Buffer.from('a'), true);
    call.emit('data', pickAnswer());
    await ex.decision;
    const r = relay(ex);
    call.emit('data', immediate(200));
    expect(r.late).toMatchObject([{ kind: 'immediate', status: 200 }]);
    expect(ex.state).toMatchObject({ request: 'complete', local: 'cancelled' });
    expect(call.cancelled).toBe(true);
  });

  it('an ImmediateResponse once the request side is complete and no phase is open is a protocol error', async () => {
    const { ex, call } = exchange('none');
    ex.sendHeaders(HEADERS, true);
    call.emit('data', pickAnswer());
    await ex.decision;
    call.emit('data', immediate(200));
    expect(ex.state).toMatchObject({ request: 'complete', local: 'cancelled' });
  });

  it('response phase: idle → awaiting-headers → complete with the mutations; an immediate answer there replaces the response', async () => {
    const { ex, call } = exchange('none');
    ex.sendHeaders(HEADERS, true);
    call.emit('data', pickAnswer());
    await ex.decision;
    const p = ex.responseHeaders(200, [], EP, false);
    expect(ex.state.response).toBe('awaiting-headers');
    call.emit('data', { response: 'response_headers', response_headers: { response: { header_mutation: { remove_headers: ['x'] } } } } as unknown as ProcessingResponse);
    expect(await p).toMatchObject({ kind: 'continue', mutations: [{ remove_headers: ['x'] }] });
    expect(ex.state.response).toBe('complete');
    const b = exchange('none');
    b.ex.sendHeaders(HEADERS, true);
    b.call.emit('data', pickAnswer());
    await b.ex.decision;
    const q = b.ex.responseHeaders(200, [], EP, false);
    b.call.emit('data', immediate(403));
    expect(await q).toMatchObject({ kind: 'immediate', status: 403 });
  });

  it('a second headers answer, an answer of no phase, a close before answering: each a defined failure', async () => {
    const a = exchange('buffered');
    a.ex.sendHeaders(HEADERS, false);
    a.call.emit('data', pickAnswer());
    a.call.emit('data', pickAnswer());
    expect(await a.ex.decision).toMatchObject({ kind: 'fail', reason: 'epp_protocol_error', detail: 'second request_headers answer' });
    const b = exchange('none');
    b.ex.sendHeaders(HEADERS, true);
    b.call.emit('data', {} as ProcessingResponse);
    expect(await b.ex.decision).toMatchObject({ kind: 'fail', reason: 'epp_protocol_error' });
    const c = exchange('none');
    c.ex.sendHeaders(HEADERS, true);
    c.call.emit('end');
    expect(await c.ex.decision).toMatchObject({ kind: 'fail', reason: 'epp_closed' });
    expect(c.ex.state.remote).toBe('closed-ok');
  });

  it('UNAVAILABLE before the headers answer is epp_unavailable; after it, epp_grpc_error', async () => {
    const a = exchange('none');
    a.ex.sendHeaders(HEADERS, true);
    a.call.emit('error', { code: 14, message: 'down' });
    expect(await a.ex.decision).toMatchObject({ kind: 'fail', reason: 'epp_unavailable' });
    const b = exchange('buffered');
    b.ex.sendHeaders(HEADERS, false);
    b.call.emit('data', pickAnswer());
    b.call.emit('error', { code: 14, message: 'down' });
    expect(await b.ex.decision).toMatchObject({ kind: 'fail', reason: 'epp_grpc_error' });
  });

  it('cancel() from any state: RST once, the stream counted closed when its status comes', () => {
    const { ex, call, metrics } = exchange('none');
    ex.sendHeaders(HEADERS, true);
    ex.cancel();
    expect(ex.state.local).toBe('cancelled');
    expect(call.cancelled).toBe(true);
    expect(metrics.data.active.eppStreams).toBe(1);
    call.emit('error', { code: 1, message: 'cancelled' });
    expect(ex.state.remote).toBe('closed');
    expect(metrics.data.active.eppStreams).toBe(0);
    ex.finish(); // nothing after a cancel
    expect(call.ended).toBe(false);
  });
});
