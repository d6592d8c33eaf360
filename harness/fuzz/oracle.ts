// Judges one fuzzed request from what really happened on its ext_proc stream (the fuzz
// session's record) and what the client got. The record is walked as Envoy's ext_proc filter
// would see it (facts §2): the first thing that is not a valid, timely answer to the oldest
// message decides the outcome (timeout, EPP error, wrong phase, immediate response, ...);
// an answer whose content planes may legitimately treat differently (CR/LF in a header, an
// endpoint that is not ip:port, metadata of the wrong type, an answer near the timeout)
// makes the outcome `lenient`: any answer will do, but it must come in time, from a backend
// the EPP or the pool allowed, and the plane must stay healthy.
import { DESTINATION_ENDPOINT_HEADER } from '../../core/proto.ts';
import type { AnswerEmit, AnswerPhase, FuzzHeader } from '../../mock-epp/fuzz-script.ts';
import type { FuzzStreamRecord } from '../../mock-epp/fuzz-session.ts';
import type { FuzzExchange } from './fuzz-case.ts';
import type { FuzzResponse } from './fuzz-client.ts';

export type Outcome =
  | { kind: 'routed'; pick: string }
  | { kind: 'immediate'; status: number }
  /** wrongPhase: 504 is also allowed under FailClose (a plane that ignores the answer and times out, or a gRPC DEADLINE_EXCEEDED). */
  | { kind: 'epp-error'; why: string; pick?: string; wrongPhase?: boolean }
  | { kind: 'timeout'; why: string; pick?: string }
  | { kind: 'lenient'; why: string; picks: string[]; outsiderAllowed?: boolean }
  | { kind: 'no-stream' };

export interface Violation {
  /** status, backend, time, no-answer, bypass, plane-health. */
  check: string;
  key: string;
  expected: string;
  received: string;
  outcome?: string;
}

export interface OracleContext {
  failureMode: 'open' | 'close';
  timeoutMs: number;
  fullDuplex: boolean;
  /** Request body mode NONE: the headers answer is the last one the plane needs, whatever end_of_stream said. */
  bodyNone?: boolean;
  /** Pool addresses (fail-open targets). */
  pool: readonly string[];
  /** Backend name -> address (echo backends say their name in x-inference-pod). */
  backends: ReadonlyMap<string, string>;
  outsider: string;
  /** Extra time a request may take beyond what the EPP's answers explain, ms. */
  marginMs: number;
  /** Statuses a plane documents instead of the reference one (per expected status). */
  statusAliases?: Readonly<Record<number, readonly number[]>>;
}

const HOP_OR_SPECIAL = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'te', 'upgrade', 'keep-alive', 'proxy-connection', DESTINATION_ENDPOINT_HEADER]);
const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** Why a mutation header is outside what every plane must apply the same way, or undefined. */
export function oddHeader(h: FuzzHeader): string | undefined {
  if (!TOKEN.test(h.name)) return `header name ${JSON.stringify(h.name.slice(0, 40))}`;
  if (HOP_OR_SPECIAL.has(h.name)) return `header ${h.name} is special`;
  if (h.base64) return 'header value of arbitrary bytes';
  if (!/^[\x20-\x7e]*$/.test(h.value)) return 'header value with control or non-ASCII characters';
  if (h.value.length > 4096) return `header value of ${h.value.length} bytes`;
  if (h.value !== h.value.trim()) return 'header value with surrounding spaces';
  if ((h.field ?? 'raw_value') !== 'raw_value') return `header value in ${h.field}`;
  if (h.appendAction !== undefined && (h.appendAction < 0 || h.appendAction > 3)) return `append_action ${h.appendAction}`;
  return undefined;
}

/** Why an answer's content lets planes differ, or undefined when every plane must follow it. */
export function oddAnswer(e: AnswerEmit, phase: AnswerPhase, ctx: Pick<OracleContext, 'fullDuplex'>, hijack: boolean): string | undefined {
  if (e.endpoint !== undefined && e.endpoint !== 'pick') return `endpoint ${JSON.stringify(e.endpoint.slice(0, 60))}`;
  if (e.placement && e.placement !== 'both') return `endpoint only in the ${e.placement}`;
  if (e.metadata && e.metadata !== 'lb') return `dynamic metadata ${e.metadata}`;
  if (hijack && e.endpointAppend === 'true') return 'append=true to a destination the client set';
  for (const h of e.headers ?? []) {
    const why = oddHeader(h);
    if (why) return why;
  }
  for (const r of e.removeHeaders ?? []) if (!TOKEN.test(r) || HOP_OR_SPECIAL.has(r)) return `removes ${JSON.stringify(r)}`;
  if (e.status !== undefined && e.status !== 0) return `CommonResponse.status ${e.status}`;
  if (e.clearRouteCache === false) return 'clear_route_cache false';
  if (e.overrideTimeoutMs !== undefined) return 'override_message_timeout';
  if (e.modeOverride) return 'mode_override';
  if (e.body) {
    const isBody = phase === 'request_body' || phase === 'response_body';
    const fits = isBody && e.body.endOfStream === undefined && (ctx.fullDuplex ? e.body.kind === 'echo' : e.body.kind === 'clear' || e.body.kind === 'replace');
    if (!fits) return `body mutation ${e.body.kind} on ${phase}`;
  }
  return undefined;
}

/** The route timeout data planes apply when nothing else bounds a request (Envoy's default). */
const ROUTE_TIMEOUT_MS = 15_000;

/** How near the timeout an answer may come before the outcome is a matter of timing. */
function band(timeoutMs: number): { under: number; over: number } {
  return { under: timeoutMs * 0.7, over: timeoutMs * 1.3 + 50 };
}

/** The outcome Envoy's table allows for what happened on the stream. */
export function classify(r: FuzzStreamRecord | undefined, x: FuzzExchange, ctx: OracleContext): Outcome {
  if (!r) return { kind: 'no-stream' };
  const pending: Array<{ phase: AnswerPhase; t: number; eos: boolean }> = [];
  const { under, over } = band(ctx.timeoutMs);
  let pick: string | undefined;
  let odd: string | undefined;
  // FailOpen: Envoy ignores a wrong-phase or empty answer; a plane may also give up on the processor. Either way the pool or the pick.
  let ignored: string | undefined;
  const wrong = (why: string): Outcome | undefined => {
    if (ctx.failureMode === 'open') {
      ignored ??= why;
      return undefined;
    }
    return p({ kind: 'epp-error', why, wrongPhase: true, ...(pick ? { pick } : {}) });
  };
  const lenient = (why: string): Outcome => ({ kind: 'lenient', why, picks: pick ? [pick, r.pick] : [r.pick], ...(x.request.hijack ? { outsiderAllowed: true } : {}) });
  const p = (o: Outcome): Outcome => (odd && o.kind !== 'timeout' ? lenient(odd) : o);
  // Envoy has no per-message timeout in FULL_DUPLEX_STREAMED (docs/ext-proc-behaviour.md): a
  // late answer may still be used, or the stream idle timeout ends the request.
  const late = (why: string): Outcome => (ctx.fullDuplex ? lenient(`${why}; full-duplex: no per-message timeout required`) : { kind: 'timeout', why, ...(pick ? { pick } : {}) });
  // In time order: a message that arrived while a turn slept is recorded when the turn gets to it, with its arrival time.
  const events = [...r.events].sort((a, b) => a.t - b.t);
  let lastIn: { eos: boolean } | undefined;
  let lastOut = 0;
  for (const ev of events) {
    if ('in' in ev) {
      pending.push({ phase: ev.in, t: ev.t, eos: ev.eos });
      lastIn = ev;
      continue;
    }
    if ('out' in ev) lastOut = ev.t;
    if ('undecodable' in ev) {
      odd ??= `the plane sent a message the mock could not read (${ev.undecodable})`;
      continue;
    }
    if ('end' in ev) {
      if (pending.length === 0 && ev.end === 'cancelled' && lastIn && !lastIn.eos) {
        // The plane gave up before sending the rest of the request (a message the mock never got
        // in full, e.g. a large body still in flight): time it from the last thing the mock did.
        const waited = ev.t - lastOut;
        if (waited >= under) return late(`the plane cancelled ${Math.round(waited)} ms after the last answer, before the request's end reached the EPP`);
        return lenient('the plane cancelled before the request\'s end reached the EPP');
      }
      if (pending.length === 0 || ev.end !== 'cancelled') break;
      const waited = ev.t - (pending[0] as { t: number }).t;
      if (waited >= under) return late(`no answer to ${pending[0]?.phase} for ${Math.round(waited)} ms`);
      return lenient(`the plane cancelled the stream ${Math.round(waited)} ms after ${pending[0]?.phase}`);
    }
    // An emit.
    const e = ev.emit;
    if (e.do === 'delay' || e.do === 'hang') continue;
    if (pending.length > 0) {
      const waited = ev.t - (pending[0] as { t: number }).t;
      if (waited > over) return late(`${e.do} ${Math.round(waited)} ms after ${pending[0]?.phase} (timeout ${ctx.timeoutMs} ms)`);
      if (waited > under) return lenient(`${e.do} ${Math.round(waited)} ms after ${pending[0]?.phase}, near the ${ctx.timeoutMs} ms timeout`);
    }
    switch (e.do) {
      case 'answer': {
        const phase = ev.phase as AnswerPhase | 'none';
        // Timer and mode overrides change what the plane waits for before the phase is even looked at.
        if (e.overrideTimeoutMs !== undefined || e.modeOverride) odd ??= e.modeOverride ? 'mode_override' : 'override_message_timeout';
        const want = pending[0];
        // An answer when nothing is pending races with the plane finishing the exchange: any outcome.
        if (!want && phase !== 'none') return lenient(`spurious ${phase} answer (no message pending)`);
        const bad = phase === 'none' ? 'answer with an empty oneof' : want && want.phase !== phase ? `${phase} answer to ${want.phase}` : undefined;
        if (bad) {
          const o = wrong(bad);
          if (o) return o;
          break;
        }
        if (!want) break;
        const answered = pending.shift();
        odd ??= oddAnswer(e, phase as AnswerPhase, ctx, x.request.hijack);
        if (phase === 'request_headers') {
          if (e.endpoint === 'none') odd ??= 'request-headers answer without a destination';
          else pick ??= r.pick;
        }
        // The answer to the last request message (end_of_stream) completes the exchange (no
        // response processing in fuzz routes): whatever the mock does next races with the plane moving on.
        if (answered?.eos && pending.length === 0) return complete();
        break;
      }
      case 'raw':
        if (e.kind === 'unknown-field') {
          // A valid answer to the pending phase with an unknown field: decoders must skip it.
          const want = pending.shift();
          if (!want) return p({ kind: 'epp-error', why: 'spurious answer (unknown field)' });
          if (want.phase === 'request_headers') pick ??= r.pick;
          else odd ??= `valid-by-default answer with an unknown field to ${want.phase}`;
          break;
        }
        if (e.kind === 'append-as-varint') return lenient('append written as a varint (proto3 decoders may skip a wrong wire type)');
        return p({ kind: 'epp-error', why: `undecodable answer (${e.kind})`, ...(pick ? { pick } : {}) });
      case 'immediate': {
        for (const h of e.headers ?? []) odd ??= oddHeader(h);
        // In body mode NONE the exchange is over once the headers are answered (Envoy closes its
        // side and reads no more): an immediate response after that races with the routing.
        if (ctx.bodyNone && pick && pending.length === 0) return lenient('immediate response after the headers answer in body mode NONE (the plane may be done with the stream)');
        if (e.status === undefined || e.status < 200 || e.status > 599) return lenient(`immediate response with status ${e.status ?? 'none'}`);
        return p({ kind: 'immediate', status: e.status });
      }
      case 'end':
        if (e.code === 0) return lenient(pending.length > 0 ? `stream closed with OK before the ${pending[0]?.phase} answer` : 'stream closed with OK');
        // DEADLINE_EXCEEDED is a timeout by name: node-proxy and the nginx module answer it 504, Envoy 500.
        return p({ kind: 'epp-error', why: `gRPC status ${e.code}`, ...(e.code === 4 ? { wrongPhase: true } : {}), ...(pick ? { pick } : {}) });
      case 'reset':
        return p({ kind: 'epp-error', why: 'stream reset', ...(pick ? { pick } : {}) });
    }
  }
  if (pending.length > 0) return lenient(`stream over with ${pending[0]?.phase} unanswered`);
  return complete();
  function complete(): Outcome {
    if (ignored) return p({ kind: 'epp-error', why: ignored, wrongPhase: true, ...(pick ? { pick } : {}) });
    if (!pick) return lenient(odd ?? 'no destination given');
    return p({ kind: 'routed', pick });
  }
}

function servedBy(res: FuzzResponse, ctx: OracleContext): string | undefined {
  const name = res.headers['x-inference-pod'];
  if (typeof name !== 'string' || !name) return undefined;
  return ctx.backends.get(name) ?? `unknown backend ${name}`;
}

function describe(o: Outcome): string {
  switch (o.kind) {
    case 'routed':
      return `routed to ${o.pick}`;
    case 'immediate':
      return `immediate response ${o.status}`;
    case 'no-stream':
      return 'no ext_proc stream for this request';
    default:
      return `${o.kind}: ${o.why}`;
  }
}

/** The time a request may take: the script's delays, a timeout per message that may wait on one, the body, and the margin. */
export function timeBoundMs(x: FuzzExchange, r: FuzzStreamRecord | undefined, ctx: OracleContext): number {
  const emits = x.script.turns.flat();
  const delays = emits.reduce((a, e) => a + (e.do === 'delay' ? Math.min(e.ms, ctx.timeoutMs * 1.5) : 0), 0);
  const messages = r ? r.events.filter((e) => 'in' in e).length : 1;
  // A mode or timer override lets the processor change what the plane waits for: Envoy then
  // waits up to its route timeout (15 s), so only that bounds the request.
  const waits = emits.some((e) => e.do === 'delay' || e.do === 'hang') || x.script.rest === 'hang';
  const overrides = emits.some((e) => e.do === 'answer' && (e.modeOverride !== undefined || e.overrideTimeoutMs !== undefined)) || (ctx.fullDuplex && waits) ? ROUTE_TIMEOUT_MS : 0;
  return delays + overrides + ctx.timeoutMs * (1 + messages) + x.request.bodySize / 2000 + ctx.marginMs;
}

/** Every way the response breaks the protocol's rules for what happened (empty = fine). */
export function judge(x: FuzzExchange, res: FuzzResponse, records: FuzzStreamRecord[], ctx: OracleContext): { outcome: Outcome; violations: Violation[] } {
  const r = records[0];
  const outcome = classify(r, x, ctx);
  const v: Violation[] = [];
  const add = (check: string, expected: string, received: string) => v.push({ check, key: res.key, expected, received, outcome: describe(outcome) });
  if (res.aborted || res.error?.startsWith('client refused')) return { outcome, violations: v };
  const bound = timeBoundMs(x, r, ctx);
  if (res.status === undefined) {
    add('no-answer', `an HTTP answer within ${Math.round(bound)} ms`, `${res.error ?? 'nothing'} after ${Math.round(res.latencyMs)} ms`);
    return { outcome, violations: v };
  }
  if (res.latencyMs > bound) add('time', `an answer within ${Math.round(bound)} ms`, `${Math.round(res.latencyMs)} ms`);
  const served = servedBy(res, ctx);
  const status = res.status;
  const allowed = (want: number[]): boolean => want.some((w) => w === status || (ctx.statusAliases?.[w] ?? []).includes(status));
  const poolOrPick = (pick?: string): string[] => [...ctx.pool, ...(pick ? [pick] : [])];
  const expectBackend = (okSet: string[], what: string) => {
    if (status !== 200) add('status', `200 from ${what}`, String(status));
    else if (!served) add('backend', what, 'no backend (no x-inference-pod)');
    else if (!okSet.includes(served)) add('backend', what, served);
  };
  switch (outcome.kind) {
    case 'routed':
      if (status !== 200) add('status', `200 from the EPP's pick ${outcome.pick}`, `${status}`);
      else if (served !== outcome.pick) add('backend', `the EPP's pick ${outcome.pick}`, served ?? 'no backend');
      break;
    case 'immediate':
      if (!allowed([outcome.status])) add('status', `${outcome.status} (the EPP's immediate response)`, String(status));
      else if (served) add('backend', 'no backend (immediate response)', served);
      break;
    case 'epp-error':
      if (ctx.failureMode === 'close') {
        // An out-of-order answer: Envoy 1.40 and the nginx module sometimes ignore it and time out (504), see docs/fuzz.md#findings.
        const want = outcome.wrongPhase ? [500, 504] : [500];
        if (!allowed(want)) add('status', `${want.join(' or ')} (FailClose, ${outcome.why})`, String(status));
      } else expectBackend(poolOrPick(outcome.pick), `the pool (FailOpen, ${outcome.why})`);
      break;
    case 'timeout':
      if (ctx.failureMode === 'close') {
        if (!allowed([504, 500])) add('status', `504 or 500 (FailClose, ${outcome.why})`, String(status));
      } else expectBackend(poolOrPick(outcome.pick), `the pool (FailOpen, ${outcome.why})`);
      break;
    case 'lenient': {
      const ok = [...poolOrPick(), ...outcome.picks, ...(outcome.outsiderAllowed ? [ctx.outsider] : [])];
      if (served && !ok.includes(served)) add('backend', `a pool backend or the EPP's pick (${outcome.why})`, served);
      break;
    }
    case 'no-stream':
      if (served) add('bypass', 'no backend reached without asking the EPP', `${status} from ${served}`);
      break;
  }
  if (served === ctx.outsider && outcome.kind !== 'lenient') add('bypass', 'never the client-named backend outside the pool', served);
  if (records.length > 1) add('streams', 'one ext_proc stream per request', `${records.length} streams`);
  return { outcome, violations: v };
}
