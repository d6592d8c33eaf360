// The multi-pool side of running a scenario (setup.pools / setup.routes): one mock EPP per pool,
// the plane's route model with every (route, pool) entry, the listener a request goes to, EPP
// actions aimed at one pool's EPP, expectations on each pool's journal, and the statistical
// check of a weighted split. run-scenario.ts calls these; single-route scenarios never do.
import { routeWithDefaults, type BodyMode, type FailureMode, type RouteModel } from '../../core/route-model.ts';
import type { StartedDataPlane } from '../data-planes/data-plane-driver.ts';
import type { MockEppProcess, JournalEntry } from '../epp/mock-epp-process.ts';
import type { TestBed } from '../launch/test-bed.ts';
import type { ActionStep, EppExpect, PoolSpec, RequestStep, Scenario } from '../scenarios/scenario-schema.ts';
import { resolveString, resolveTemplates, type TemplateContext } from '../scenarios/templates.ts';
import { checkJournalEntry, servedBy, type Mismatch, type SentRequest } from './expectations.ts';
import type { ExchangeResult } from './http-exchange.ts';

export function isMultiPool(s: Scenario): boolean {
  return s.setup.pools !== undefined;
}

/** Listener names in order of first use; index 0 is the plane's url. */
export function listenerNames(s: Scenario): string[] {
  const out: string[] = [];
  for (const r of s.setup.routes ?? []) if (!out.includes(r.listener)) out.push(r.listener);
  return out.length ? out : ['default'];
}

/** A pool's mock EPP config: endpoints default to the pool's members. */
export function poolEppConfig(pool: PoolSpec, cfg: Record<string, unknown>, tpl: TemplateContext): Record<string, unknown> {
  const resolved = resolveTemplates(cfg, tpl);
  if (resolved.endpoints === undefined) resolved.endpoints = pool.backends.map((b) => tpl.backends.get(b)?.address);
  return resolved;
}

/** Starts one mock EPP per pool on the bed, each in its own folder under its work dir (config, log). */
export async function startPoolEpps(s: Scenario, tpl: TemplateContext, bed: TestBed): Promise<Map<string, MockEppProcess>> {
  const epps = new Map<string, MockEppProcess>();
  for (const pool of s.setup.pools ?? []) epps.set(pool.name, await bed.withMockEpp({ config: poolEppConfig(pool, pool.epp, tpl), dir: `epp-${pool.name}` }));
  return epps;
}

/**
 * The plane's route model: one entry per (route, pool), names resolved to addresses. What a pool
 * leaves unset (body mode, failure mode) comes from the plane's settings for this scenario.
 */
export function buildPlaneRoute(
  s: Scenario,
  eppAddress: (pool: string) => string,
  tpl: TemplateContext,
  settings: { bodyMode: BodyMode; failureMode: FailureMode },
): RouteModel {
  const addr = (x: string): string => tpl.backends.get(x)?.address ?? resolveString(x, tpl);
  const pools = new Map((s.setup.pools ?? []).map((p) => [p.name, p]));
  const listeners = listenerNames(s);
  const entries: RouteModel[] = [];
  for (const r of s.setup.routes ?? []) {
    for (const ref of r.pools) {
      const name = typeof ref === 'string' ? ref : ref.pool;
      const p = pools.get(name);
      if (!p) continue; // the schema refused it already
      const e: Partial<RouteModel> & { eppAddress: string } = {
        eppAddress: eppAddress(name),
        pathPrefix: r.pathPrefix,
        failureMode: p.failureMode ?? settings.failureMode,
        timeoutMs: p.timeoutMs,
        bodyMode: p.bodyMode ?? settings.bodyMode,
        fallbackEndpoints: p.fallback.map(addr),
        responseProcessing: p.responseProcessing,
        allow: p.allow.map(addr),
        routeName: r.name,
        poolName: name,
        listener: listeners.indexOf(r.listener),
        weight: typeof ref === 'string' ? 1 : ref.weight,
      };
      if (p.maxBodyBytes !== undefined) e.maxBodyBytes = p.maxBodyBytes;
      if (p.subsetHint) e.subsetHint = p.subsetHint.map(addr);
      entries.push(routeWithDefaults(e));
    }
  }
  const [first, ...rest] = entries;
  if (!first) throw new Error('multi-pool scenario without routes');
  return { ...first, routes: [{ ...first }, ...rest] };
}

/** Base URL for a request: its route's listener, else the plane's url. */
export function requestBaseUrl(s: Scenario, step: RequestStep, dp: StartedDataPlane): string {
  const route = step.request.route ? s.setup.routes?.find((r) => r.name === step.request.route) : undefined;
  const i = route ? listenerNames(s).indexOf(route.listener) : 0;
  if (i <= 0) return dp.url;
  const url = dp.listenerUrls?.[i];
  if (!url) throw new Error(`${dp.name} reported no URL for listener "${route?.listener}" (index ${i}): a multi-pool driver must set listenerUrls`);
  return url;
}

/** set-epp for a pool: its endpoints default to the pool's members. */
export function actionEppConfig(s: Scenario, step: ActionStep, tpl: TemplateContext, poolName: string): Record<string, unknown> {
  const pool = s.setup.pools?.find((p) => p.name === poolName);
  return pool ? poolEppConfig(pool, step.epp ?? {}, tpl) : resolveTemplates(step.epp ?? {}, tpl);
}

/** Journal lengths per pool before a step. */
export async function journalMarks(epps: ReadonlyMap<string, MockEppProcess>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [name, e] of epps) out.set(name, (await e.journal().catch(() => [])).length);
  return out;
}

/**
 * Judges `epps` (per-pool journal expectations) for one step. A pool with `entries` waits for
 * that many streams; the others are read once every stream of the step has reached some EPP
 * (or after 5 s), so a late stream is not missed.
 */
export async function checkPoolJournals(
  want: Record<string, EppExpect>,
  epps: ReadonlyMap<string, MockEppProcess>,
  before: ReadonlyMap<string, number>,
  requests: number,
  sent: SentRequest,
): Promise<{ mismatches: Mismatch[]; entries: JournalEntry[]; byPool: Map<string, JournalEntry[]> }> {
  const mismatches: Mismatch[] = [];
  const all: JournalEntry[] = [];
  const byPool = new Map<string, JournalEntry[]>();
  const deadline = Date.now() + 5000;
  const fresh = async (name: string): Promise<JournalEntry[]> => ((await epps.get(name)?.journal().catch(() => [])) ?? []).slice(before.get(name) ?? 0);
  for (;;) {
    let n = 0;
    for (const name of epps.keys()) n += (await fresh(name)).length;
    if (n >= requests || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const [name, w] of Object.entries(want)) {
    const epp = epps.get(name);
    if (!epp) continue;
    const from = before.get(name) ?? 0;
    const entries = w.entries !== undefined && w.entries > 0 ? (await epp.waitForJournal(from + w.entries, 5000)).slice(from) : await fresh(name);
    all.push(...entries);
    byPool.set(name, entries);
    if (w.entries !== undefined && entries.length !== w.entries)
      mismatches.push({ what: `pool ${name}: EPP journal entries (streams) for this step`, expected: w.entries, received: entries.length });
    for (const [j, e] of entries.entries()) mismatches.push(...checkJournalEntry(w, e, sent, `pool ${name}${entries.length > 1 ? ` entry ${j + 1}` : ''}:`));
  }
  return { mismatches, entries: all, byPool };
}

// ---- the weighted split ----------------------------------------------------------------------

function logFactorials(n: number): Float64Array {
  const f = new Float64Array(n + 1);
  for (let i = 2; i <= n; i++) f[i] = f[i - 1]! + Math.log(i);
  return f;
}

/**
 * The exact two-sided acceptance interval [lo, hi] for X ~ Binomial(n, p): P(X < lo) <= alpha/2
 * and P(X > hi) <= alpha/2, with lo as large and hi as small as that allows. A plane that splits
 * exactly as configured falls outside it with probability at most alpha.
 */
export function binomialAcceptance(n: number, p: number, alpha: number): [number, number] {
  if (p <= 0) return [0, 0];
  if (p >= 1) return [n, n];
  const lf = logFactorials(n);
  const pmf = Array.from({ length: n + 1 }, (_, k) => Math.exp(lf[n]! - lf[k]! - lf[n - k]! + k * Math.log(p) + (n - k) * Math.log1p(-p)));
  let lo = 0;
  let tail = 0;
  while (lo < n && tail + pmf[lo]! <= alpha / 2) tail += pmf[lo++]!;
  let hi = n;
  tail = 0;
  while (hi > 0 && tail + pmf[hi]! <= alpha / 2) tail += pmf[hi--]!;
  return [lo, hi];
}

/**
 * Each answered response counts for the pool whose backend served it. Every pool's count must
 * lie in its binomial acceptance interval; with k pools each is tested at alpha/k (Bonferroni),
 * so a correct plane fails the step with probability at most alpha overall.
 */
export function checkSplit(
  split: NonNullable<RequestStep['expect']['split']>,
  s: Scenario,
  results: readonly ExchangeResult[],
  journals?: ReadonlyMap<string, readonly JournalEntry[]>,
): { mismatches: Mismatch[]; summary: string } {
  const poolOf = new Map<string, string>();
  for (const p of s.setup.pools ?? []) if (p.name in split.weights) for (const b of p.backends) poolOf.set(b, p.name);
  const counts = new Map<string, number>(Object.keys(split.weights).map((k) => [k, 0]));
  let outside = 0;
  let n = 0;
  for (const r of results) {
    if (r.status === undefined) continue;
    n++;
    const pool = poolOf.get(servedBy(r));
    if (pool === undefined) outside++;
    else counts.set(pool, (counts.get(pool) ?? 0) + 1);
  }
  const total = Object.values(split.weights).reduce((a, b) => a + b, 0);
  const names = Object.keys(split.weights);
  const alpha = split.falseFailureProbability / names.length;
  const mismatches: Mismatch[] = [];
  const parts: string[] = [];
  if (outside > 0) mismatches.push({ what: 'split: responses served by a backend of none of the split pools', expected: 0, received: outside });
  for (const name of names) {
    const p = split.weights[name]! / total;
    const [lo, hi] = binomialAcceptance(n, p, alpha);
    const got = counts.get(name) ?? 0;
    parts.push(`${name} ${got}/${n} (expected ${(p * n).toFixed(1)}, accepted ${lo}..${hi})`);
    if (got < lo || got > hi)
      mismatches.push({
        what: `split: responses served by pool ${name}`,
        expected: `${lo}..${hi} of ${n} (weight ${split.weights[name]}/${total} = ${(100 * p).toFixed(1)} %; exact binomial bound, false-failure probability ${split.falseFailureProbability})`,
        received: `${got} (${((100 * got) / Math.max(1, n)).toFixed(1)} %)`,
      });
  }
  // With the pools' journals (step.epps names them): each pool's EPP was asked exactly as often
  // as its pool served, so the plane called the EPP of the pool it drew, not another one.
  for (const [name, entries] of journals ?? []) {
    if (!(name in split.weights)) continue;
    const served = counts.get(name) ?? 0;
    if (entries.length !== served)
      mismatches.push({ what: `split: streams on pool ${name}'s EPP vs responses its pods served`, expected: served, received: entries.length });
  }
  return { mismatches, summary: parts.join('; ') };
}

