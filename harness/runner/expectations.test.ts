import { describe, expect, it } from 'vitest';
import { checkAggregate, checkJournalEntry, checkResponse, compressPhases, servedBy, statusMatches, textMatches } from './expectations.ts';
import type { ExchangeResult } from './http-exchange.ts';

function res(status: number, body: unknown, headers: Record<string, string> = {}): ExchangeResult {
  const b = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: b, bodySha256: 'x', latencyMs: 5, endedAt: 0, aborted: false };
}
const sent = { bodyBytes: 3, bodySha256: 'abc' };
const echo = (name: string, req: Record<string, unknown> = {}) => ({ backend: { name, address: '127.0.0.2:1' }, request: { method: 'POST', path: '/v1/completions', headers: {}, bodyBytes: 3, bodySha256: 'abc', ...req } });

describe('expectations', () => {
  it('matches status as a number, a set or a class', () => {
    expect(statusMatches(200, 200)).toBe(true);
    expect(statusMatches([500, 503], 503)).toBe(true);
    expect(statusMatches([500, 503], 504)).toBe(false);
    expect(statusMatches('5xx', 504)).toBe(true);
    expect(statusMatches('5xx', 404)).toBe(false);
    expect(statusMatches(200, undefined)).toBe(false);
  });

  it('matches text exactly, by contains/regex, presence and absence', () => {
    expect(textMatches('a', 'a')).toBe(true);
    expect(textMatches('a', undefined)).toBe(false);
    expect(textMatches({ absent: true }, undefined)).toBe(true);
    expect(textMatches({ absent: true }, '')).toBe(false);
    expect(textMatches({ present: true }, '')).toBe(true);
    expect(textMatches({ matches: '^1\\d+$' }, '123')).toBe(true);
    expect(textMatches({ contains: 'b' }, 'abc')).toBe(true);
  });

  it('identifies the serving backend from x-inference-pod, else the echo, else none', () => {
    expect(servedBy(res(200, echo('pod-a'), { 'x-inference-pod': 'pod-b' }))).toBe('pod-b');
    expect(servedBy(res(200, echo('pod-a')))).toBe('pod-a');
    expect(servedBy(res(500, 'oops', { 'content-type': 'text/plain' }))).toBe('none');
  });

  it('reports every mismatch of a response at once', () => {
    const r = res(200, echo('pod-a', { bodyBytes: 2 }), { 'x-inference-pod': 'pod-a' });
    const m = checkResponse({ status: 201, backend: 'pod-b', headers: { 'x-inference-pod': 'pod-b' }, echo: { bodyIntact: true } }, r, sent);
    expect(m.map((x) => x.what)).toEqual(['status', 'response header x-inference-pod', 'served by backend', 'backend received body bytes']);
  });

  it('a missing response is one mismatch naming the error', () => {
    const r: ExchangeResult = { headers: {}, body: Buffer.alloc(0), bodySha256: '', latencyMs: 1, endedAt: 0, aborted: false, error: 'ECONNRESET' };
    expect(checkResponse({ status: 200 }, r, sent)).toEqual([{ what: 'no response (connection reset by the data plane: ECONNRESET)', expected: 200, received: 'ECONNRESET' }]);
  });

  it('checks backendsSeen over all repeats', () => {
    const rs = [res(200, echo('pod-a')), res(200, echo('pod-a'))];
    expect(checkAggregate({ backendsSeen: ['pod-a', 'pod-b'] }, rs)).toHaveLength(1);
    expect(checkAggregate({ backendsSeen: ['pod-a'] }, rs)).toHaveLength(0);
  });

  it('checks journal entries: headers, body hash of the request, phases (body chunks once), end, served endpoint', () => {
    const entry = {
      requestHeaders: { ':path': '/v1/completions', 'x-a': '1' },
      requestBody: { size: 3, sha256: 'abc' },
      phases: [{ phase: 'request_headers' }, { phase: 'request_body' }, { phase: 'request_body' }, { phase: 'response_headers' }],
      end: { how: 'completed' },
      servedEndpoint: '127.0.0.2:1',
    };
    expect(checkJournalEntry({ headers: { 'x-a': '1' }, bodySha256: 'request', phases: ['request_headers', 'request_body', 'response_headers'], end: 'completed', servedEndpoint: '127.0.0.2:1' }, entry, sent, '')).toEqual([]);
    const bad = checkJournalEntry({ bodySha256: 'zzz', end: ['client-cancelled'], servedEndpoint: '127.0.0.3:1' }, entry, sent, 'entry 1:');
    expect(bad.map((m) => m.what)).toEqual(['entry 1: EPP received body sha256', 'entry 1: EPP stream end', 'entry 1: served endpoint reported to the EPP']);
    expect(compressPhases(['request_headers', 'request_body', 'request_body', 'request_trailers'])).toEqual(['request_headers', 'request_body', 'request_trailers']);
  });
});
