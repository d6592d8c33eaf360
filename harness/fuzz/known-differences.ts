// Violations a data plane is known to show, each with why: counted and printed as known, not
// failing the run. Only behaviour confirmed and recorded for its maintainers belongs here.
import type { FuzzExchange } from './fuzz-case.ts';
import type { Violation } from './oracle.ts';

export interface KnownDifference {
  plane: string;
  why: string;
  /** Only in these profiles (default: every one). */
  profiles?: readonly string[];
  matches(v: Violation, x: FuzzExchange | undefined): boolean;
}

const oddImmediateStatus = (x: FuzzExchange | undefined): boolean =>
  x?.script.turns.flat().some((e) => e.do === 'immediate' && e.status !== undefined && (e.status < 100 || e.status > 999)) ?? false;

/** Turn 1 answers the request headers twice (the second is a spurious message). */
const duplicateHeadersAnswer = (x: FuzzExchange | undefined): boolean =>
  (x?.script.turns[0] ?? []).filter((e) => e.do === 'answer' && (e.phase === 'auto' || e.phase === 'request_headers')).length >= 2;

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    plane: 'envoy',
    why: 'Envoy 1.40 writes an ImmediateResponse status above 999 into the HTTP/1.1 status line as is (e.g. "HTTP/1.1 65535"), which no client can parse (docs/fuzz.md#findings)',
    matches: (v, x) => v.check === 'no-answer' && /HPE_INVALID_STATUS/.test(v.received) && oddImmediateStatus(x),
  },
  {
    plane: 'nginx-njs',
    why: 'the NJS baseline turns an ImmediateResponse into "no endpoint": FailClose answers 500 from its fail-close server, FailOpen routes to the pool (facts §4)',
    matches: (v) => (v.check === 'status' || v.check === 'backend') && (v.outcome?.startsWith('immediate response') ?? false),
  },
  // Open bugs, confirmed and handed to their owners (docs/fuzz.md#open): counted, so a long run
  // goes on searching past them. Remove an entry when its bug is fixed.
  ...['nginx', 'nginx-direct'].map((plane) => ({
    plane,
    why: 'open module bug: a second request_headers answer is taken as the request_body answer and the request routed (Envoy: spurious message, 500 under FailClose) (docs/fuzz.md#open)',
    matches: (v: Violation, x: FuzzExchange | undefined) => v.check === 'status' && v.received === '200' && (v.outcome?.startsWith('epp-error: request_headers answer to request_body') ?? false) && duplicateHeadersAnswer(x),
  })),
  ...['nginx', 'nginx-direct'].map((plane) => ({
    plane,
    profiles: ['close-buffered'],
    why: 'open module bug: FailClose, the EPP answers the headers (with its pick) and never the body: the request is routed (200) when the body message times out (Envoy and node-proxy: 504) (docs/fuzz.md#open)',
    matches: (v: Violation) => v.check === 'status' && v.received === '200' && (v.outcome?.startsWith('timeout: no answer to request_body') ?? false),
  })),
];

/** Splits violations into the ones that fail the run and the known ones (with why). */
export function splitKnown(plane: string, violations: Violation[], exchangeOf: (key: string) => FuzzExchange | undefined, profile?: string): { failing: Violation[]; known: Array<Violation & { why: string }> } {
  const failing: Violation[] = [];
  const known: Array<Violation & { why: string }> = [];
  for (const v of violations) {
    const k = KNOWN_DIFFERENCES.find((d) => d.plane === plane && (!d.profiles || (profile !== undefined && d.profiles.includes(profile))) && d.matches(v, exchangeOf(v.key)));
    if (k) known.push({ ...v, why: k.why });
    else failing.push(v);
  }
  return { failing, known };
}
