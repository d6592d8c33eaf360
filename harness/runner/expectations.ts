// Judges responses and EPP journal entries against a step's expectations. Every check that
// fails yields a Mismatch (what, expected, received), so a failure shows all of them at once.
import type { EppExpect, Expect, TextMatch } from '../scenarios/scenario-schema.ts';
import type { JournalEntry } from '../epp/mock-epp-process.ts';
import type { ExchangeResult } from './http-exchange.ts';

export interface Mismatch {
  what: string;
  expected: unknown;
  received: unknown;
  /** The request it is about (its eppkit-request-id), when one request is singled out. */
  request?: string;
}

export interface EchoView {
  backend?: { name?: string; address?: string };
  request?: { method?: string; path?: string; rawQuery?: string; headers?: Record<string, string>; bodyBytes?: number; bodySha256?: string; chunked?: boolean };
}

export function parseEcho(r: ExchangeResult): EchoView | undefined {
  const ct = String(r.headers['content-type'] ?? '');
  if (!ct.includes('json') || r.body.length === 0 || r.body.length > 1024 * 1024) return undefined;
  try {
    const v = JSON.parse(r.body.toString('utf8')) as EchoView;
    return v && typeof v === 'object' && v.backend && v.request ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The backend name that served a response ('none' when no echo backend answered). */
export function servedBy(r: ExchangeResult): string {
  const h = r.headers['x-inference-pod'];
  if (typeof h === 'string' && h) return h;
  return parseEcho(r)?.backend?.name ?? 'none';
}

export function textMatches(m: TextMatch, v: string | undefined): boolean {
  if (typeof m === 'string') return v === m;
  if (m.absent) return v === undefined;
  if (m.excludes !== undefined && v !== undefined && v.includes(m.excludes)) return false;
  if (v === undefined) return m.excludes !== undefined && m.equals === undefined && m.contains === undefined && m.matches === undefined && !m.present;
  if (m.equals !== undefined && v !== m.equals) return false;
  if (m.contains !== undefined && !v.includes(m.contains)) return false;
  if (m.matches !== undefined && !new RegExp(m.matches).test(v)) return false;
  return true;
}

function headerValue(h: Record<string, string | string[] | undefined> | undefined, name: string): string | undefined {
  const v = h?.[name.toLowerCase()];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
}

function checkHeaders(prefix: string, want: Record<string, TextMatch> | undefined, got: Record<string, string | string[] | undefined> | undefined, out: Mismatch[]): void {
  for (const [name, m] of Object.entries(want ?? {})) {
    const v = headerValue(got, name);
    if (!textMatches(m, v)) out.push({ what: `${prefix} ${name}`, expected: m, received: v ?? '(absent)' });
  }
}

export function statusMatches(want: NonNullable<Expect['status']>, got: number | undefined): boolean {
  if (got === undefined) return false;
  if (typeof want === 'number') return got === want;
  if (Array.isArray(want)) return want.includes(got);
  return String(got)[0] === want[0];
}

export interface SentRequest {
  bodyBytes: number;
  bodySha256: string;
}

/** Checks one response. */
/** Why a request got no answer, in a reason's words (a reset names the plane, not the client). */
export function describeNoAnswer(error: string | undefined): string {
  if (!error) return 'no answer';
  if (error === 'ECONNRESET' || error === 'socket hang up' || error === 'connection closed without an answer') return `connection reset by the data plane: ${error}`;
  if (error === 'ECONNREFUSED') return 'connection refused: the data plane is not listening';
  return error;
}

export function checkResponse(expect: Expect, r: ExchangeResult, sent: SentRequest): Mismatch[] {
  const out: Mismatch[] = [];
  if (expect.aborted !== undefined) {
    if (expect.aborted !== r.aborted) out.push({ what: 'client aborted', expected: expect.aborted, received: r.aborted ? 'aborted' : `answered ${r.status ?? r.error}` });
    if (r.aborted) return out;
  }
  if (r.status === undefined) {
    out.push({ what: `no response (${describeNoAnswer(r.error)})`, expected: expect.status ?? 'an HTTP response', received: r.error ?? 'no response' });
    return out;
  }
  if (expect.status !== undefined && !statusMatches(expect.status, r.status)) out.push({ what: 'status', expected: expect.status, received: r.status });
  checkHeaders('response header', expect.headers, r.headers, out);
  if (expect.backend !== undefined) {
    const want = Array.isArray(expect.backend) ? expect.backend : [expect.backend];
    const got = servedBy(r);
    if (!want.includes(got)) out.push({ what: 'served by backend', expected: expect.backend, received: got });
  }
  if (expect.bodySha256 !== undefined && expect.bodySha256 !== r.bodySha256) out.push({ what: 'response body sha256', expected: expect.bodySha256, received: r.bodySha256 });
  if (expect.bodyContains !== undefined && !r.body.toString('utf8').includes(expect.bodyContains))
    out.push({ what: 'response body contains', expected: expect.bodyContains, received: r.body.toString('utf8').slice(0, 300) });
  if (expect.reused !== undefined && (r.reused ?? false) !== expect.reused)
    out.push({ what: 'keep-alive connection reused', expected: expect.reused, received: r.reused ? 'reused' : 'a new connection (the previous answer closed it or said Connection: close)' });
  if (expect.continued !== undefined && (r.continued ?? false) !== expect.continued)
    out.push({ what: '100 Continue before the answer', expected: expect.continued, received: r.continued ? 'received' : 'none (the client sent the body after 1 s anyway)' });
  // Timings were resolved against the plane's timeout before the check ("{{timeoutMs*3}}").
  if (expect.maxLatencyMs !== undefined && r.latencyMs > Number(expect.maxLatencyMs))
    out.push({ what: 'latency (gross bound)', expected: `<= ${expect.maxLatencyMs} ms`, received: `${Math.round(r.latencyMs)} ms` });
  if (expect.echo) {
    const e = parseEcho(r);
    if (!e?.request) {
      out.push({ what: 'echo', expected: 'an echo backend answer', received: r.body.toString('utf8').slice(0, 300) || '(empty body)' });
      return out;
    }
    const q = e.request;
    const x = expect.echo;
    if (x.method !== undefined && x.method !== q.method) out.push({ what: 'echo method', expected: x.method, received: q.method });
    if (x.path !== undefined && x.path !== q.path) out.push({ what: 'echo path', expected: x.path, received: q.path });
    if (x.rawQuery !== undefined && x.rawQuery !== q.rawQuery) out.push({ what: 'echo query', expected: x.rawQuery, received: q.rawQuery });
    checkHeaders('backend received header', x.headers, q.headers, out);
    if (x.bodyIntact) {
      if (q.bodyBytes !== sent.bodyBytes) out.push({ what: 'backend received body bytes', expected: sent.bodyBytes, received: q.bodyBytes });
      else if (q.bodySha256 !== sent.bodySha256) out.push({ what: 'backend received body sha256', expected: sent.bodySha256, received: q.bodySha256 });
    }
    if (x.bodyBytes !== undefined && x.bodyBytes !== q.bodyBytes) out.push({ what: 'backend received body bytes', expected: x.bodyBytes, received: q.bodyBytes });
    if (x.bodySha256 !== undefined && x.bodySha256 !== q.bodySha256) out.push({ what: 'backend received body sha256', expected: x.bodySha256, received: q.bodySha256 });
    if (x.chunked !== undefined && x.chunked !== q.chunked) out.push({ what: 'backend received chunked', expected: x.chunked, received: q.chunked });
  }
  return out;
}

/** Checks what holds over all responses of a step (backendsSeen). */
export function checkAggregate(expect: Expect, results: readonly ExchangeResult[]): Mismatch[] {
  if (!expect.backendsSeen) return [];
  const seen = new Set(results.map(servedBy));
  const missing = expect.backendsSeen.filter((b) => !seen.has(b));
  return missing.length > 0 ? [{ what: 'backends seen over the step', expected: expect.backendsSeen, received: [...seen] }] : [];
}

const asRecord = (v: unknown): Record<string, string> | undefined => (v && typeof v === 'object' ? (v as Record<string, string>) : undefined);

/** Checks one EPP journal entry. */
export function checkJournalEntry(want: EppExpect, e: JournalEntry, sent: SentRequest, prefix: string): Mismatch[] {
  const out: Mismatch[] = [];
  checkHeaders(`${prefix} EPP received header`, want.headers, asRecord(e.requestHeaders), out);
  const body = e.requestBody as { size?: number; sha256?: string } | undefined;
  if (want.bodySha256 !== undefined) {
    const exp = want.bodySha256 === 'request' ? sent.bodySha256 : want.bodySha256;
    if (body?.sha256 !== exp) out.push({ what: `${prefix} EPP received body sha256`, expected: exp, received: body?.sha256 ?? '(no body)' });
  }
  if (want.bodyBytes !== undefined && (body?.size ?? 0) !== want.bodyBytes) out.push({ what: `${prefix} EPP received body bytes`, expected: want.bodyBytes, received: body?.size ?? 0 });
  if (want.phases) {
    const got = compressPhases(((e.phases as Array<{ phase: string }> | undefined) ?? []).map((p) => p.phase));
    if (JSON.stringify(got) !== JSON.stringify(want.phases)) out.push({ what: `${prefix} EPP phase sequence`, expected: want.phases, received: got });
  }
  if (want.end !== undefined) {
    const how = (e.end as { how?: string } | undefined)?.how ?? '(still open)';
    const ok = Array.isArray(want.end) ? want.end.includes(how) : want.end === how;
    if (!ok) out.push({ what: `${prefix} EPP stream end`, expected: want.end, received: how });
  }
  if (want.servedEndpoint !== undefined && e.servedEndpoint !== want.servedEndpoint)
    out.push({ what: `${prefix} served endpoint reported to the EPP`, expected: want.servedEndpoint, received: e.servedEndpoint ?? '(none)' });
  if (want.subsetHint !== undefined && JSON.stringify(e.subsetHint ?? []) !== JSON.stringify(want.subsetHint))
    out.push({ what: `${prefix} subset hint received by the EPP`, expected: want.subsetHint, received: e.subsetHint ?? '(none)' });
  if (want.rule !== undefined && e.rule !== want.rule) out.push({ what: `${prefix} EPP rule matched`, expected: want.rule, received: e.rule ?? '(none)' });
  return out;
}

/** At most how many TCP connections (journal peers) a step's streams came over. */
export function checkJournalConnections(want: EppExpect, entries: readonly JournalEntry[]): Mismatch[] {
  if (want.connections === undefined) return [];
  const peers = [...new Set(entries.map((e) => String(e.peer ?? 'unknown')))];
  return peers.length <= want.connections ? [] : [{ what: 'TCP connections to the EPP over the step (journal peers)', expected: `at most ${want.connections}`, received: `${peers.length}: ${peers.join(', ')}` }];
}

/** Consecutive body chunks count once: [headers, body, body, body] -> [headers, body]. */
export function compressPhases(phases: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of phases) if (out[out.length - 1] !== p || !p.endsWith('_body')) out.push(p);
  return out;
}
