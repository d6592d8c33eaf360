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

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    plane: 'envoy',
    why: 'Envoy 1.40 writes an ImmediateResponse status above 999 into the HTTP/1.1 status line as is (e.g. "HTTP/1.1 65535"), which no client can parse (docs/fuzz.md#findings)',
    matches: (v, x) => v.check === 'no-answer' && /HPE_INVALID_STATUS/.test(v.received) && oddImmediateStatus(x),
  },
  {
    plane: 'envoy',
    profiles: ['close-streamed'],
    why: 'Envoy 1.40 applies no message timeout in FULL_DUPLEX_STREAMED: a body the EPP stops answering is ended by the stream idle timeout (15 s in eppkit\'s Envoy config), not the 1 s message timeout (docs/fuzz.md#findings)',
    matches: (v) => v.check === 'time' && Number.parseInt(v.received, 10) >= 14_000 && Number.parseInt(v.received, 10) <= 20_000,
  },
  {
    plane: 'nginx-njs',
    why: 'the NJS baseline turns an ImmediateResponse into "no endpoint": FailClose answers 500 from its fail-close server, FailOpen routes to the pool (facts §4)',
    matches: (v) => (v.check === 'status' || v.check === 'backend') && (v.outcome?.startsWith('immediate response') ?? false),
  },
  // Open bugs of our planes, confirmed and handed to their owners (docs/fuzz.md#open), go here
  // so a long run goes on searching past them; remove an entry when its bug is fixed. (The
  // module's duplicate headers answer and its body timeout after a pick were fixed in epp-core.)
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
