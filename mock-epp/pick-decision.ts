// The pick decision of one ext_proc stream, as a function of what the stream has received:
// rule, `x-eppkit-*` directives, subset hint, conformance selection header, picker. It reads
// no session state and writes none; the picker (round-robin position, least-loaded depths) is
// the only state it moves. ext-proc-session.ts calls it once, when the headers answer is due.
import { CONFORMANCE_SELECTION_HEADER } from '../core/proto.ts';
import type { JournalEntry } from './journal.ts';
import { parseGrpcCode, type MockEppConfig, type Phase, type RuleAction } from './mock-epp-config.ts';
import type { Picker } from './pickers.ts';
import { firstMatch, modelOf, type CompiledRule } from './rules.ts';

const DIRECTIVE_PREFIX = 'x-eppkit-';
const PHASE_NAMES: readonly string[] = ['request_headers', 'request_body', 'request_trailers', 'response_headers', 'response_body', 'response_trailers'];

export type PickSource = NonNullable<JournalEntry['pick']>['source'];

export interface PickInput {
  /** Request headers, lower-case keys. */
  headers: Readonly<Record<string, string>>;
  /** 1-based ordinal of the stream under its config (rules' nth / everyKth). */
  ordinal: number;
  /** The whole request body when the answer was held for it, else undefined. */
  body: Buffer | undefined;
  /** The subset hint from the metadata, when the stream carried one. */
  subsetHint: readonly string[] | undefined;
  config: Pick<MockEppConfig, 'endpoints' | 'directives' | 'emptySelection' | 'fallbacks'>;
  rules: readonly CompiledRule[];
  picker: Picker;
  /** Whether a rule or the picker reads the body's `model` (parsing costs). */
  needsModel: boolean;
}

export type PickOutcome =
  | {
      kind: 'pick';
      /** The header / metadata value: the pick, then the fallbacks, comma-separated. */
      value: string;
      endpoints: string[];
      source: Exclude<PickSource, 'malformed'>;
      /** The picker's choice (to count and to release), absent for a rule's or directive's literal endpoint. */
      picked?: string;
    }
  | { kind: 'no-endpoint'; details: string };

export interface PickDecision {
  action: RuleAction;
  /** Name of the matched rule. */
  rule?: string;
  /** The `x-eppkit-*` headers seen (directives on). */
  directives?: Record<string, string>;
  /** Directives that could not be understood (journaled as bad-directive). */
  problems: string[];
  outcome: PickOutcome;
}

/** Parses `x-eppkit-*` request headers into an action (directives win over a matched rule). */
const NO_DIRECTIVES = Object.freeze({ action: Object.freeze({}) as RuleAction, seen: Object.freeze({}) as Record<string, string>, problems: Object.freeze([]) as unknown as string[] });

export function directivesToAction(headers: Readonly<Record<string, string>>): { action: RuleAction; seen: Record<string, string>; problems: string[] } {
  let seen: Record<string, string> | undefined;
  for (const k in headers) if (k.startsWith(DIRECTIVE_PREFIX)) (seen ??= {})[k] = headers[k] as string;
  // Most requests carry none: one shared (frozen) answer, nothing allocated.
  if (seen === undefined) return NO_DIRECTIVES;
  const problems: string[] = [];
  const action: RuleAction = {};
  const phaseRaw = seen['x-eppkit-phase'];
  let phase: Phase = 'request_headers';
  if (phaseRaw !== undefined) {
    const p = phaseRaw.trim().replace(/-/g, '_');
    if (PHASE_NAMES.includes(p)) phase = p as Phase;
    else problems.push(`x-eppkit-phase: unknown phase '${phaseRaw}'`);
  }
  const isTrue = (v: string | undefined) => v !== undefined && /^(true|1|yes)$/i.test(v.trim());
  const delay = seen['x-eppkit-delay-ms'];
  if (delay !== undefined) {
    const ms = Number(delay);
    if (Number.isFinite(ms) && ms >= 0) action.delay = { ms: Math.round(ms), phase };
    else problems.push(`x-eppkit-delay-ms: not a number of milliseconds '${delay}'`);
  }
  const imm = seen['x-eppkit-immediate'];
  if (imm !== undefined) {
    const status = Number(imm);
    if (Number.isInteger(status) && status >= 0 && status <= 999) action.immediate = { status, phase };
    else problems.push(`x-eppkit-immediate: not an HTTP status '${imm}'`);
  }
  const ge = seen['x-eppkit-grpc-error'];
  if (ge !== undefined) {
    const code = parseGrpcCode(ge);
    if (code !== undefined) action.grpcError = { code, message: `x-eppkit-grpc-error: ${ge}`, phase };
    else problems.push(`x-eppkit-grpc-error: not a gRPC status '${ge}'`);
  }
  if (isTrue(seen['x-eppkit-hang'])) action.hang = { phase };
  if (isTrue(seen['x-eppkit-reset'])) action.reset = { phase };
  if (isTrue(seen['x-eppkit-close'])) action.close = { phase };
  const ep = seen['x-eppkit-endpoint'];
  if (ep !== undefined) action.endpoint = ep;
  return { action, seen, problems };
}

const NO_ACTION: RuleAction = Object.freeze({});
const NO_PROBLEMS: string[] = [];

/** Whether conformance selection entry `w` (ip:port, bare ip, or [ipv6]) names pool endpoint `c`. */
function selects(w: string, c: string): boolean {
  return w === c || (!w.includes(':') && c.startsWith(`${w}:`)) || (w.startsWith('[') && c === w);
}

/** Decides rule, directives and the pick of one stream. */
export function decidePick(input: PickInput): PickDecision {
  const { headers, config } = input;
  // Parsing the body costs; only when a rule or the picker looks at the model.
  const model = input.body !== undefined && input.needsModel ? modelOf(input.body) : undefined;
  const rule = input.rules.length > 0 ? firstMatch(input.rules as CompiledRule[], { headers, ordinal: input.ordinal, body: input.body, model }) : undefined;
  let action: RuleAction = rule ? rule.action : NO_ACTION;
  let source: Exclude<PickSource, 'malformed'> = rule?.action.endpoint !== undefined ? 'rule' : 'picker';
  let directives: Record<string, string> | undefined;
  let problems = NO_PROBLEMS;
  if (config.directives) {
    const dir = directivesToAction(headers);
    if (dir !== NO_DIRECTIVES) {
      directives = dir.seen;
      problems = dir.problems;
      if (dir.action.endpoint !== undefined) source = 'directive';
      action = { ...action, ...dir.action };
    }
  }
  const done = (outcome: PickOutcome): PickDecision => {
    const d: PickDecision = { action, problems, outcome };
    if (rule) d.rule = rule.name;
    if (directives) d.directives = directives;
    return d;
  };
  if (action.endpoint !== undefined) {
    const list = Array.isArray(action.endpoint) ? action.endpoint : [action.endpoint];
    return done({ kind: 'pick', value: list.join(','), endpoints: list, source });
  }
  // The pool, narrowed by the subset hint and the conformance header.
  let candidates: readonly string[] = config.endpoints;
  const hint = input.subsetHint;
  if (hint !== undefined) {
    candidates = candidates.length > 0 ? candidates.filter((c) => hint.includes(c)) : hint;
    if (candidates.length === 0) return done({ kind: 'no-endpoint', details: 'no pool endpoint is in the subset hint' });
  }
  const sel = headers[CONFORMANCE_SELECTION_HEADER];
  if (sel !== undefined) {
    const wanted = sel.split(',').map((s) => s.trim()).filter(Boolean);
    // An empty selection header: the lightweight EPP ignores it (whole pool), the full EPP finds no one eligible.
    if (!(wanted.length === 0 && config.emptySelection === 'whole-pool')) {
      candidates = candidates.filter((c) => wanted.some((w) => selects(w, c)));
      source = 'conformance-header';
      if (candidates.length === 0) return done({ kind: 'no-endpoint', details: `no pool endpoint matches ${CONFORMANCE_SELECTION_HEADER}: ${sel}` });
    }
  }
  if (candidates.length === 0) return done({ kind: 'no-endpoint', details: 'the pool has no endpoints' });
  const order = input.picker.order({ candidates, headers, model });
  const list = config.fallbacks === 0 && order.length > 0 ? [order[0] as string] : order.slice(0, 1 + config.fallbacks);
  return done({ kind: 'pick', value: list.length === 1 ? (list[0] as string) : list.join(','), endpoints: list, source, picked: list[0] as string });
}
