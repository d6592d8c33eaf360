// Rule matching and delay sampling. Rules are compiled once per config (regexes, seeded
// PRNGs); the first rule whose every condition holds wins.
import type { DelaySpec, Rule, RuleAction, StringMatch } from './mock-epp-config.ts';
import { seededRandom } from './pickers.ts';

export interface MatchContext {
  headers: Readonly<Record<string, string>>;
  /** 1-based ordinal of the stream. */
  ordinal: number;
  /** The request body, when it is known at decision time. */
  body: Buffer | undefined;
  model: string | undefined;
}

type Test = (ctx: MatchContext) => boolean;

function stringTest(m: StringMatch, get: (ctx: MatchContext) => string | undefined): Test {
  if (typeof m === 'string') return (ctx) => get(ctx) === m;
  if (m.present !== undefined) {
    const want = m.present;
    return (ctx) => (get(ctx) !== undefined) === want;
  }
  if (m.regex !== undefined) {
    const re = new RegExp(m.regex);
    return (ctx) => {
      const v = get(ctx);
      return v !== undefined && re.test(v);
    };
  }
  const exact = m.exact;
  return (ctx) => get(ctx) === exact;
}

export interface CompiledRule {
  name: string;
  action: RuleAction;
  /** Whether any condition needs the request body, or its `model`. */
  needsBody: boolean;
  needsModel: boolean;
  matches: Test;
}

export function compileRules(rules: readonly Rule[]): CompiledRule[] {
  return rules.map((r, i) => {
    const tests: Test[] = [];
    const m = r.match;
    for (const [name, sm] of Object.entries(m.headers ?? {})) {
      const key = name.toLowerCase();
      tests.push(stringTest(sm, (ctx) => ctx.headers[key]));
    }
    if (m.method !== undefined) tests.push(stringTest(m.method, (ctx) => ctx.headers[':method']));
    if (m.path !== undefined) tests.push(stringTest(m.path, (ctx) => ctx.headers[':path']));
    if (m.model !== undefined) tests.push(stringTest(m.model, (ctx) => ctx.model));
    if (m.bodySize !== undefined) {
      const { min = 0, max = Number.POSITIVE_INFINITY } = m.bodySize;
      tests.push((ctx) => {
        const n = ctx.body?.length ?? 0;
        return n >= min && n <= max;
      });
    }
    if (m.nth !== undefined) {
      const nth = m.nth;
      tests.push((ctx) => ctx.ordinal === nth);
    }
    if (m.everyKth !== undefined) {
      const k = m.everyKth;
      tests.push((ctx) => ctx.ordinal % k === 0);
    }
    if (m.probability !== undefined) {
      const p = m.probability;
      const rand = seededRandom(m.seed);
      // Last, so the PRNG advances only for requests every other condition accepted.
      tests.push(() => rand() < p);
    }
    return {
      name: r.name ?? `rules[${i}]`,
      action: r.action,
      needsBody: m.model !== undefined || m.bodySize !== undefined,
      needsModel: m.model !== undefined,
      matches: (ctx) => tests.every((t) => t(ctx)),
    };
  });
}

export function firstMatch(rules: readonly CompiledRule[], ctx: MatchContext): CompiledRule | undefined {
  for (const r of rules) if (r.matches(ctx)) return r;
  return undefined;
}

/** Standard normal sample (Box-Muller). */
function gaussian(rand: () => number): number {
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function sampleDelayMs(d: DelaySpec, rand: () => number = Math.random): number {
  if ('ms' in d) return d.ms;
  if ('uniform' in d) {
    const { min, max } = d.uniform;
    return min + rand() * Math.max(0, max - min);
  }
  return d.logNormal.medianMs * Math.exp(d.logNormal.sigma * gaussian(rand));
}

/** The `model` field of a JSON body, if the body is a JSON object with a string model. */
export function modelOf(body: Buffer | undefined): string | undefined {
  if (!body || body.length === 0 || body.length > 8 * 1024 * 1024) return undefined;
  // Cheap pre-check: most bodies of a load test are JSON; skip parsing anything that is not.
  const first = body[0];
  if (first !== 0x7b /* { */ && first !== 0x20 && first !== 0x0a) return undefined;
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const m = (v as Record<string, unknown>).model;
      return typeof m === 'string' ? m : undefined;
    }
  } catch {
    // not JSON: no model
  }
  return undefined;
}
