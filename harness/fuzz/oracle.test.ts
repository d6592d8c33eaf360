import { describe, expect, it } from 'vitest';
import type { FuzzEvent, FuzzStreamRecord } from '../../mock-epp/fuzz-session.ts';
import type { FuzzExchange } from './fuzz-case.ts';
import type { FuzzResponse } from './fuzz-client.ts';
import { classify, judge, oddHeader, type OracleContext } from './oracle.ts';

const ctx = (failureMode: 'open' | 'close' = 'close'): OracleContext => ({
  failureMode,
  timeoutMs: 200,
  fullDuplex: false,
  pool: ['127.0.0.1:1001', '127.0.0.1:1002'],
  backends: new Map([
    ['pool-a', '127.0.0.1:1001'],
    ['pool-b', '127.0.0.1:1002'],
    ['outsider', '127.0.0.1:1003'],
  ]),
  outsider: '127.0.0.1:1003',
  marginMs: 1000,
});
const X: FuzzExchange = { request: { method: 'GET', path: '/', headers: [], bodySize: 0, hijack: false }, script: { turns: [], rest: 'valid' }, pick: 1 };
const rec = (events: FuzzEvent[]): FuzzStreamRecord => ({ id: 1, key: 'k', pick: '127.0.0.1:1002', openedAt: 0, events, done: true });
const inHeaders: FuzzEvent = { t: 0, in: 'request_headers', eos: true };
const answer = (t: number, phase: 'request_headers' | 'request_body' | 'none' = 'request_headers'): FuzzEvent => ({ t, out: 'answer', phase, emit: { do: 'answer', phase: 'auto' } });
const res = (status: number | undefined, pod?: string, extra: Partial<FuzzResponse> = {}): FuzzResponse => ({ key: 'k', ...(status !== undefined ? { status } : {}), headers: pod ? { 'x-inference-pod': pod } : {}, bodyBytes: 0, bodyHead: '', latencyMs: 5, aborted: false, reusedSocket: false, ...extra });

describe('fuzz oracle', () => {
  it('a valid, timely answer means routed to the pick, and only that passes', () => {
    const r = rec([inHeaders, answer(1), { t: 2, end: 'half-closed' }]);
    expect(classify(r, X, ctx())).toEqual({ kind: 'routed', pick: '127.0.0.1:1002' });
    expect(judge(X, res(200, 'pool-b'), [r], ctx()).violations).toEqual([]);
    expect(judge(X, res(200, 'pool-a'), [r], ctx()).violations[0]?.check).toBe('backend');
    expect(judge(X, res(500), [r], ctx()).violations[0]?.check).toBe('status');
    expect(judge(X, res(undefined, undefined, { error: 'ECONNRESET' }), [r], ctx()).violations[0]?.check).toBe('no-answer');
  });

  it('body mode NONE: an immediate response after the headers answer may be routed or answered', () => {
    const immediate: FuzzEvent = { t: 2, out: 'immediate', emit: { do: 'immediate', status: 200 } };
    const r = rec([{ t: 0, in: 'request_headers', eos: false }, answer(1), immediate, { t: 3, end: 'by-mock' }]);
    // Buffered: the body is still owed, so the immediate response decides.
    expect(classify(r, X, ctx('open')).kind).toBe('immediate');
    const none = { ...ctx('open'), bodyNone: true };
    expect(classify(r, X, none).kind).toBe('lenient');
    expect(judge(X, res(200, 'pool-b'), [r], none).violations).toEqual([]);
    expect(judge(X, res(200), [r], none).violations).toEqual([]);
    expect(judge(X, res(200, 'outsider'), [r], none).violations[0]?.check).toBe('backend');
  });

  it('wrong phase: 500 under FailClose, the pool or the pick under FailOpen', () => {
    const r = rec([inHeaders, answer(1, 'request_body'), { t: 2, end: 'cancelled' }]);
    expect(classify(r, X, ctx()).kind).toBe('epp-error');
    expect(judge(X, res(500), [r], ctx()).violations).toEqual([]);
    expect(judge(X, res(502), [r], ctx()).violations[0]?.check).toBe('status');
    expect(judge(X, res(200, 'pool-a'), [r], ctx('open')).violations).toEqual([]);
    expect(judge(X, res(200, 'outsider'), [r], ctx('open')).violations.map((v) => v.check)).toContain('backend');
  });

  it('an answer well after the timeout is a timeout (504 or 500), one near it is lenient', () => {
    const late = rec([inHeaders, { t: 0, out: 'delay', emit: { do: 'delay', ms: 600 } }, answer(600)]);
    expect(classify(late, X, ctx()).kind).toBe('timeout');
    expect(judge(X, res(504), [late], ctx()).violations).toEqual([]);
    const near = rec([inHeaders, answer(200)]);
    expect(classify(near, X, ctx()).kind).toBe('lenient');
    expect(judge(X, res(504), [near], ctx()).violations).toEqual([]);
  });

  it('an immediate response is relayed with its status and without a backend', () => {
    const r = rec([inHeaders, { t: 1, out: 'immediate', emit: { do: 'immediate', status: 429 } }]);
    expect(judge(X, res(429), [r], ctx()).violations).toEqual([]);
    expect(judge(X, res(502), [r], ctx()).violations[0]?.expected).toMatch(/429/);
  });

  it('a backend reached with no ext_proc stream is a bypass; the client-named outsider never passes', () => {
    expect(judge(X, res(200, 'pool-a'), [], ctx()).violations[0]?.check).toBe('bypass');
    expect(judge(X, res(400), [], ctx()).violations).toEqual([]);
    const r = rec([inHeaders, answer(1)]);
    expect(judge({ ...X, request: { ...X.request, hijack: true } }, res(200, 'outsider'), [r], ctx()).violations.map((v) => v.check)).toContain('bypass');
  });

  it('odd header content is named, plain content is not', () => {
    expect(oddHeader({ name: 'x-fuzz', value: '1', append: 'true' })).toBeUndefined();
    expect(oddHeader({ name: 'x-fuzz', value: 'a\r\nb' })).toMatch(/control/);
    expect(oddHeader({ name: 'Host', value: 'a' })).toBeDefined();
    expect(oddHeader({ name: 'x-fuzz', value: '1', field: 'both' })).toMatch(/both/);
  });
});
