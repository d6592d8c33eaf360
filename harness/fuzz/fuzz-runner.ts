// `eppkit fuzz` for one data plane: per profile (failure mode x body mode), start the echo
// backends (two in the pool, one outside it), the mock EPP in fuzz mode (in this process) and
// the data plane; then let fast-check draw cases from the grammar with the seed, run each
// (clients and EPP scripts at once), judge every request (oracle.ts), send a canary request
// and ask the plane's health. The first failing case is shrunk (fast-check replays its path
// and shrinks it, on a freshly started plane whenever the plane was left broken) and saved as
// case.json and as a scenario YAML. Same seed, same cases.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { routeWithDefaults, type RouteModel } from '../../core/route-model.ts';
import { silentLogger } from '../../core/logger.ts';
import { FuzzScriptBook } from '../../mock-epp/fuzz-book.ts';
import { VALID_SCRIPT } from '../../mock-epp/fuzz-script.ts';
import type { FuzzStreamRecord } from '../../mock-epp/fuzz-session.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { EchoBackend, type StartedEchoBackend } from '../backends/echo-backend.ts';
import type { DataPlaneDriver, Runtime, StartedDataPlane } from '../data-planes/data-plane-driver.ts';
import { exchangesOf, scriptShape, type FuzzCase, type FuzzExchange, type FuzzProfile } from './fuzz-case.ts';
import { sendCase, type FuzzResponse } from './fuzz-client.ts';
import { scenarioYaml, OUTSIDER_NAME, POOL_NAMES } from './fuzz-scenario.ts';
import { judge, timeBoundMs, type OracleContext, type Outcome, type Violation } from './oracle.ts';
import { splitKnown } from './known-differences.ts';
import { planeFootprint } from '../runner/run-scenario.ts';
import { RUN_LEAK_BOUNDS, leakFinding, type PlaneFootprint } from '../runner/results.ts';
import { fuzzCase, type CaseLimits } from './request-grammar.ts';

export const ALL_PROFILES: readonly FuzzProfile[] = [
  { name: 'close-buffered', failureMode: 'close', bodyMode: 'buffered' },
  { name: 'open-buffered', failureMode: 'open', bodyMode: 'buffered' },
  { name: 'close-streamed', failureMode: 'close', bodyMode: 'streamed' },
  { name: 'open-none', failureMode: 'open', bodyMode: 'none' },
];

/** The profiles a data plane can run (its features). */
export function profilesFor(driver: DataPlaneDriver): FuzzProfile[] {
  return ALL_PROFILES.filter((p) => driver.features.has(`fail-${p.failureMode}`) && driver.features.has(`body-${p.bodyMode}`));
}

export interface FuzzRunOptions {
  driver: DataPlaneDriver;
  runtime?: Runtime;
  seed: number;
  /** Cases per profile (default: as many as fit in durationMs). */
  runs?: number;
  /** Wall time for the search over all profiles (shrinking comes on top), ms. */
  durationMs?: number;
  profiles?: FuzzProfile[];
  /** The data plane's per-message EPP timeout, ms. Default 200 (Envoy's). */
  timeoutMs?: number;
  marginMs?: number;
  /** Wall time allowed to shrink one failure, ms. Default 60 s. */
  shrinkBudgetMs?: number;
  /** Where case files, scenario YAMLs, logs and fuzz-report.json go. */
  outDir: string;
  limits?: Partial<CaseLimits>;
  statusAliases?: OracleContext['statusAliases'];
  log?: (line: string) => void;
}

export interface FuzzFailure {
  plane: string;
  profile: FuzzProfile;
  seed: number;
  timeoutMs: number;
  /** The shrunk case and the violations it still shows. */
  fuzzCase: FuzzCase;
  violations: Violation[];
  /** Requests in the case as first found, and after shrinking. */
  foundRequests: number;
  shrunkRequests: number;
  shrinks: number;
  counterexamplePath?: string;
  caseFile: string;
  scenarioFile: string;
}

export interface FuzzCounts {
  cases: number;
  requests: number;
  /** ext_proc streams the data plane opened to the mock. */
  streams: number;
  /** Answers the mock sent: answers in any phase, immediate responses, raw bytes, gRPC ends, resets. */
  answers: number;
  /** Distinct script shapes generated (emit kinds and phases per turn, and the rest). */
  scriptShapes: number;
  /** Distinct sequences seen on the wire (messages in, emits out, how the stream ended). */
  wireShapes: number;
  /** Outcome kinds judged, by kind. */
  outcomes: Record<string, number>;
  /** Times the plane was restarted (after a case left it broken). */
  restarts: number;
  /** Violations the plane is known to show (known-differences.ts), by why. */
  known: Record<string, number>;
}

export interface FuzzProfileResult {
  profile: FuzzProfile;
  cases: number;
  failure?: FuzzFailure;
}

export interface FuzzReport {
  plane: string;
  seed: number;
  timeoutMs: number;
  durationMs: number;
  profiles: FuzzProfileResult[];
  counts: FuzzCounts;
  failures: FuzzFailure[];
  /** RSS or fd growth beyond the run's bounds over a profile (harness/runner/results.ts RUN_LEAK_BOUNDS). */
  leaks: Array<{ profile: string; finding: string }>;
}

/** What `runCase` found for one case. */
export interface CaseResult {
  violations: Violation[];
  outcomes: Array<Outcome | undefined>;
  responses: FuzzResponse[];
  /** The plane must be restarted before the next case. */
  broken: boolean;
  /** Violations the plane is known to show (known-differences.ts): not failing a search, but a replay reports them. */
  known: Array<Violation & { why: string }>;
}

const CANARY = 'canary';

function caseDigest(c: FuzzCase): string {
  return createHash('sha256').update(JSON.stringify(c)).digest('hex');
}

function wireShape(r: FuzzStreamRecord): string {
  return r.events
    .map((e) => ('in' in e ? `in:${e.in}` : 'out' in e ? `out:${e.out}${e.phase ? `:${e.phase}` : ''}` : 'end' in e ? `end:${e.end}` : 'undecodable'))
    .join(' ');
}

/** Backends, mock and plane for one profile; restartable plane. */
export class FuzzBench implements AsyncDisposable {
  readonly profile: FuzzProfile;
  readonly book: FuzzScriptBook;
  readonly ctx: OracleContext;
  readonly counts: FuzzCounts;
  readonly #driver: DataPlaneDriver;
  readonly #runtime: Runtime;
  readonly #workDir: string;
  readonly #backends: StartedEchoBackend[];
  readonly #epp: StartedMockEpp;
  readonly #route: RouteModel;
  #plane: StartedDataPlane | undefined;
  #starts = 0;
  /** RSS and fds after the first case on this plane start (warm), for the leak check. */
  #baseline: PlaneFootprint | undefined;
  #needBaseline = true;
  #run = 0;
  readonly #scriptShapes = new Set<string>();
  readonly #wireShapes = new Set<string>();

  private constructor(o: { driver: DataPlaneDriver; runtime: Runtime; workDir: string; profile: FuzzProfile; backends: StartedEchoBackend[]; epp: StartedMockEpp; book: FuzzScriptBook; route: RouteModel; ctx: OracleContext; counts: FuzzCounts }) {
    this.#driver = o.driver;
    this.#runtime = o.runtime;
    this.#workDir = o.workDir;
    this.profile = o.profile;
    this.#backends = o.backends;
    this.#epp = o.epp;
    this.book = o.book;
    this.#route = o.route;
    this.ctx = o.ctx;
    this.counts = o.counts;
  }

  static async start(o: { driver: DataPlaneDriver; runtime: Runtime; workDir: string; profile: FuzzProfile; timeoutMs: number; marginMs: number; statusAliases?: OracleContext['statusAliases']; counts: FuzzCounts }): Promise<FuzzBench> {
    mkdirSync(o.workDir, { recursive: true });
    const backends: StartedEchoBackend[] = [];
    try {
      for (const name of [...POOL_NAMES, OUTSIDER_NAME]) backends.push(await new EchoBackend(name).withHost('127.0.0.1').withPort(0).withMaxReceived(0).start());
    } catch (e) {
      for (const b of backends) await b.stop();
      throw e;
    }
    const pool = backends.slice(0, POOL_NAMES.length).map((b) => b.address);
    const book = new FuzzScriptBook(pool, o.profile.bodyMode === 'streamed');
    // A plane configured by its user for a fixed EPP port (a plane file running at a URL) gets the mock there.
    const epp = await new MockEpp({ endpoints: pool }).withHost('127.0.0.1').withPort(o.driver.fixedEppPort?.() ?? 0).withAdminPort(null).withLogger(silentLogger).withFuzz(book).start();
    const route = routeWithDefaults({
      eppAddress: epp.address,
      failureMode: o.profile.failureMode,
      bodyMode: o.profile.bodyMode,
      timeoutMs: o.timeoutMs,
      fallbackEndpoints: pool,
    });
    const ctx: OracleContext = {
      failureMode: o.profile.failureMode,
      timeoutMs: o.timeoutMs,
      fullDuplex: o.profile.bodyMode === 'streamed',
      bodyNone: o.profile.bodyMode === 'none',
      pool,
      backends: new Map(backends.map((b) => [b.name, b.address])),
      outsider: (backends[POOL_NAMES.length] as StartedEchoBackend).address,
      marginMs: o.marginMs,
      ...(o.statusAliases ? { statusAliases: o.statusAliases } : {}),
    };
    const bench = new FuzzBench({ ...o, backends, epp, book, route, ctx });
    try {
      await bench.#startPlane();
    } catch (e) {
      await bench[Symbol.asyncDispose]();
      throw e;
    }
    return bench;
  }

  get plane(): StartedDataPlane | undefined {
    return this.#plane;
  }

  async #startPlane(): Promise<void> {
    const dir = join(this.#workDir, `plane-${++this.#starts}`);
    mkdirSync(dir, { recursive: true });
    this.#plane = await this.#driver.start(this.#route, { workDir: dir, runtime: this.#runtime, host: '127.0.0.1' });
    this.#baseline = undefined;
    this.#needBaseline = true;
  }

  /** RSS and fd growth of the plane since its first case, beyond the run's bounds (undefined = within). */
  leak(): string | undefined {
    const now = this.#plane ? planeFootprint(this.#plane) : undefined;
    if (!this.#baseline || !now) return undefined;
    return leakFinding(this.#baseline, now, RUN_LEAK_BOUNDS);
  }

  async restartPlane(): Promise<void> {
    this.counts.restarts++;
    const p = this.#plane;
    this.#plane = undefined;
    await p?.stop().catch(() => {});
    await this.#startPlane();
  }

  /** Runs one case on the plane and judges it (the canary request included). */
  async runCase(c: FuzzCase): Promise<CaseResult> {
    const plane = this.#plane;
    if (!plane) throw new Error('data plane not started');
    const prefix = `r${++this.#run}`;
    this.book.clear();
    const xs = exchangesOf(c);
    xs.forEach((x, i) => this.book.set(`${prefix}.${i}`, x.script, this.ctx.pool[x.pick % this.ctx.pool.length] as string));
    for (const x of xs) this.#scriptShapes.add(scriptShape(x.script));
    const hard = Math.max(...xs.map((x) => timeBoundMs(x, undefined, this.ctx))) + this.ctx.timeoutMs * 10 + 10_000;
    const responses = (await sendCase(c, { url: plane.url, prefix, outsider: this.ctx.outsider, hardTimeoutMs: hard })).flat();
    // Streams end just after their responses; one the plane keeps open is judged as it stands.
    await this.book.settled(this.ctx.timeoutMs * 2 + 1000);
    const violations: Violation[] = [];
    const outcomes: Array<Outcome | undefined> = [];
    xs.forEach((x, i) => {
      const res = responses[i] as FuzzResponse;
      const recs = this.book.recordsFor(res.key);
      const j = judge(x, res, recs, this.ctx);
      outcomes.push(j.outcome);
      this.counts.outcomes[j.outcome.kind] = (this.counts.outcomes[j.outcome.kind] ?? 0) + 1;
      violations.push(...j.violations);
    });
    // The canary: a plain request answered as the real EPP would must still be routed.
    const canaryKey = `${prefix}.${CANARY}`;
    const canaryX: FuzzExchange = { request: { method: 'GET', path: '/v1/completions', headers: [], bodySize: 0, hijack: false }, script: VALID_SCRIPT, pick: 0 };
    const canaryCase: FuzzCase = { connections: [[canaryX]] };
    this.book.set(`${prefix}-c.0`, VALID_SCRIPT, this.ctx.pool[0] as string);
    const [[canary]] = (await sendCase(canaryCase, { url: plane.url, prefix: `${prefix}-c`, outsider: this.ctx.outsider, hardTimeoutMs: this.ctx.timeoutMs * 10 + 10_000 })) as [[FuzzResponse]];
    await this.book.settled(this.ctx.timeoutMs * 2 + 1000);
    const cj = judge(canaryX, canary, this.book.recordsFor(canary.key), this.ctx);
    let broken = false;
    for (const v of cj.violations) {
      broken = true;
      violations.push({ ...v, key: canaryKey, check: `after-case ${v.check}`, expected: `a plain request after the case: ${v.expected}` });
    }
    const health = planeHealth(plane);
    for (const h of health) {
      broken = true;
      violations.push({ check: 'plane-health', key: prefix, expected: 'the plane alive with nothing alarming in its logs', received: h });
    }
    if (violations.some((v) => v.check === 'no-answer')) broken = true;
    if (this.#needBaseline && !broken) {
      this.#baseline = planeFootprint(plane);
      this.#needBaseline = false;
    }
    const { failing, known } = splitKnown(this.#driver.name, violations, (key) => xs[Number(key.slice(prefix.length + 1))], this.profile.name);
    for (const k of known) this.counts.known[k.why] = (this.counts.known[k.why] ?? 0) + 1;
    // Counts.
    this.counts.cases++;
    this.counts.requests += xs.length + 1;
    for (const r of this.book.records) {
      this.counts.streams++;
      this.counts.answers += r.events.filter((e) => 'out' in e && e.out !== 'delay' && e.out !== 'hang').length;
      this.#wireShapes.add(wireShape(r));
    }
    return { violations: failing, known, outcomes, responses, broken };
  }

  get scriptShapes(): ReadonlySet<string> {
    return this.#scriptShapes;
  }
  get wireShapes(): ReadonlySet<string> {
    return this.#wireShapes;
  }

  logs(): string {
    return this.#plane?.logs() ?? '';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#plane?.stop().catch(() => {});
    await this.#epp.stop(200).catch(() => {});
    for (const b of this.#backends) await b.stop().catch(() => {});
  }
}

/** Problems the plane's health contract reports (crashes, alerts, exits: harness/data-planes/plane-health.ts). */
export function planeHealth(plane: StartedDataPlane): string[] {
  const h = plane.health();
  return h.ok ? [] : h.problems.map((p) => `${p.kind} (${p.source}): ${p.line}`);
}

export function emptyCounts(): FuzzCounts {
  return { cases: 0, requests: 0, streams: 0, answers: 0, scriptShapes: 0, wireShapes: 0, outcomes: {}, restarts: 0, known: {} };
}

function summarize(v: Violation[]): string {
  const first = v[0];
  if (!first) return 'no violation';
  return `${first.check}: expected ${first.expected}, got ${first.received}${first.outcome ? ` [${first.outcome}]` : ''}${v.length > 1 ? ` (+${v.length - 1} more)` : ''}`;
}

export class FuzzCaseFailed extends Error {
  readonly violations: Violation[];
  constructor(v: Violation[]) {
    super(summarize(v));
    this.violations = v;
  }
}

export interface SavedCase {
  version: 1;
  plane: string;
  profile: FuzzProfile;
  seed: number;
  timeoutMs: number;
  counterexamplePath?: string;
  violations: Violation[];
  fuzzCase: FuzzCase;
}

function limitsOf(o: FuzzRunOptions, timeoutMs: number): CaseLimits {
  return { timeoutMs, poolSize: POOL_NAMES.length, maxBodyBytes: 3 * 1024 * 1024, maxConnections: 3, maxRequestsPerConnection: 3, ...o.limits };
}

/** Runs the search on every profile; returns the counts and the shrunk failures (saved under outDir). */
export async function runFuzz(o: FuzzRunOptions): Promise<FuzzReport> {
  const log = o.log ?? (() => {});
  const timeoutMs = o.timeoutMs ?? 200;
  const marginMs = o.marginMs ?? 2000;
  const profiles = o.profiles ?? profilesFor(o.driver);
  const counts = emptyCounts();
  const started = performance.now();
  const results: FuzzProfileResult[] = [];
  const failures: FuzzFailure[] = [];
  const scriptShapes = new Set<string>();
  const wireShapes = new Set<string>();
  const leaks: FuzzReport['leaks'] = [];
  mkdirSync(o.outDir, { recursive: true });
  for (const [pi, profile] of profiles.entries()) {
    const seed = o.seed + pi;
    const budget = o.durationMs !== undefined ? o.durationMs / profiles.length : undefined;
    log(`${o.driver.name} ${profile.name}: seed ${seed}${o.runs !== undefined ? `, ${o.runs} cases` : ''}${budget !== undefined ? `, ${Math.round(budget / 1000)} s` : ''}`);
    await using bench = await FuzzBench.start({ driver: o.driver, runtime: o.runtime ?? 'local', workDir: join(o.outDir, `${o.driver.name}-${profile.name}`), profile, timeoutMs, marginMs, ...(o.statusAliases ? { statusAliases: o.statusAliases } : {}), counts });
    const failed = new Map<string, CaseResult>();
    let needsRestart = false;
    // fast-check's time limit (interruptAfterTimeLimit) stops waiting for a run but does not stop
    // it: the run goes on in the background and could restart the plane after the bench is
    // disposed (an orphaned plane) or overlap the next phase. Every check is followed by
    // `await settle()`, which waits for the run in flight.
    let inflight: Promise<unknown> = Promise.resolve();
    const settle = (): Promise<unknown> => inflight;
    const property = fc.asyncProperty(fuzzCase(limitsOf(o, timeoutMs)), (c) => {
      const run = runOne(c);
      inflight = run.catch(() => {});
      return run;
    });
    const runOne = async (c: FuzzCase): Promise<void> => {
      if (needsRestart) {
        await bench.restartPlane();
        needsRestart = false;
      }
      const r = await bench.runCase(c);
      if (r.broken) needsRestart = true;
      if (r.violations.length > 0) {
        // Keyed by a digest: a case may carry 1 MiB header values, and shrinking stores many.
        failed.set(caseDigest(c), r);
        if (failed.size > 100) failed.delete(failed.keys().next().value as string);
        throw new FuzzCaseFailed(r.violations);
      }
    };
    const search = await fc.check(property, {
      seed,
      numRuns: o.runs ?? 1_000_000,
      endOnFailure: true,
      ...(budget !== undefined ? { interruptAfterTimeLimit: budget } : {}),
      markInterruptAsFailure: false,
    });
    await settle();
    results.push({ profile, cases: search.numRuns });
    if (search.failed && !search.interrupted && search.counterexample) {
      const found = search.counterexample[0] as FuzzCase;
      log(`${o.driver.name} ${profile.name}: case ${search.numRuns} failed: ${summarize(failed.get(caseDigest(found))?.violations ?? [])}; shrinking`);
      // Replay the failing path and let fast-check shrink it (a fresh plane first).
      needsRestart = true;
      const t0 = performance.now();
      const shrinkBudget = o.shrinkBudgetMs ?? 60_000;
      const shrink = await fc.check(property, { seed, path: search.counterexamplePath ?? undefined, interruptAfterTimeLimit: shrinkBudget, markInterruptAsFailure: false });
      await settle();
      let shrunk = (shrink.failed && shrink.counterexample ? shrink.counterexample[0] : found) as FuzzCase;
      let last = failed.get(caseDigest(shrunk)) ?? failed.get(caseDigest(found));
      // fast-check shrinks inside each request; then drop whole requests that the failure does not need.
      const greedy = await dropRequests(shrunk, async (c) => {
        if (needsRestart) {
          await bench.restartPlane();
          needsRestart = false;
        }
        const r = await bench.runCase(c);
        if (r.broken) needsRestart = true;
        return r;
      }, t0 + shrinkBudget * 1.5);
      if (greedy) [shrunk, last] = greedy;
      const violations = last?.violations ?? [];
      const failure = saveFailure(o, profile, seed, timeoutMs, shrunk, last, exchangesOf(found).length, shrink.numShrinks, search.counterexamplePath ?? undefined, bench, failures.length);
      log(`${o.driver.name} ${profile.name}: shrunk to ${failure.shrunkRequests} request(s) in ${shrink.numShrinks} steps, ${Math.round((performance.now() - t0) / 1000)} s: ${summarize(violations)}\n  case: ${failure.caseFile}\n  scenario: ${failure.scenarioFile}`);
      failures.push(failure);
      (results.at(-1) as FuzzProfileResult).failure = failure;
    } else if (search.failed && search.interrupted) {
      log(`${o.driver.name} ${profile.name}: interrupted while running a failing case`);
    }
    const leak = bench.leak();
    if (leak) {
      log(`${o.driver.name} ${profile.name}: ${leak}`);
      leaks.push({ profile: profile.name, finding: leak });
    }
    for (const s of bench.scriptShapes) scriptShapes.add(s);
    for (const s of bench.wireShapes) wireShapes.add(s);
  }
  counts.scriptShapes = scriptShapes.size;
  counts.wireShapes = wireShapes.size;
  const report: FuzzReport = { plane: o.driver.name, seed: o.seed, timeoutMs, durationMs: Math.round(performance.now() - started), profiles: results, counts, failures, leaks };
  writeFileSync(join(o.outDir, `fuzz-report-${o.driver.name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

/** Removes requests one at a time while the case still fails; the smallest failing case and its result, or undefined if none was removed. */
async function dropRequests(c: FuzzCase, run: (c: FuzzCase) => Promise<CaseResult>, deadline: number): Promise<[FuzzCase, CaseResult] | undefined> {
  let best: [FuzzCase, CaseResult] | undefined;
  let cur = c;
  for (let ci = 0; ci < cur.connections.length; ci++) {
    for (let ri = 0; ri < (cur.connections[ci]?.length ?? 0); ) {
      if (performance.now() > deadline || exchangesOf(cur).length <= 1) return best;
      const connections = cur.connections.map((conn, i) => (i === ci ? conn.filter((_, j) => j !== ri) : conn)).filter((conn) => conn.length > 0);
      const candidate: FuzzCase = { connections };
      const r = await run(candidate);
      if (r.violations.length > 0) {
        cur = candidate;
        best = [cur, r];
        if (connections.length < c.connections.length && (cur.connections[ci]?.length ?? 0) === 0) break;
      } else ri++;
    }
  }
  return best;
}

function saveFailure(o: FuzzRunOptions, profile: FuzzProfile, seed: number, timeoutMs: number, c: FuzzCase, last: CaseResult | undefined, foundRequests: number, shrinks: number, path: string | undefined, bench: FuzzBench, n: number): FuzzFailure {
  const violations = last?.violations ?? [];
  const dir = join(o.outDir, 'failures');
  mkdirSync(dir, { recursive: true });
  const base = `${o.driver.name}-${profile.name}-seed${seed}-${n + 1}`;
  const caseFile = join(dir, `${base}.case.json`);
  const scenarioFile = join(dir, `${base}.yaml`);
  const saved: SavedCase = { version: 1, plane: o.driver.name, profile, seed, timeoutMs, ...(path ? { counterexamplePath: path } : {}), violations, fuzzCase: c };
  writeFileSync(caseFile, `${JSON.stringify(saved, null, 2)}\n`);
  writeFileSync(join(dir, `${base}.plane.log`), bench.logs());
  // The YAML's expectations come from what the EPP did in the shrunk case's last run.
  const outcomes = last?.outcomes ?? [];
  writeFileSync(scenarioFile, scenarioYaml({ name: `fuzz-${base}`.toLowerCase().replace(/[^a-z0-9-]/g, '-'), plane: o.driver.name, profile, timeoutMs, seed, fuzzCase: c, prefix: 'case', outcomes, summary: summarize(violations) }));
  return { plane: o.driver.name, profile, seed, timeoutMs, fuzzCase: c, violations, foundRequests, shrunkRequests: exchangesOf(c).length, shrinks, ...(path ? { counterexamplePath: path } : {}), caseFile, scenarioFile };
}

/** Runs a saved case once on a fresh plane: the violations it shows now (empty = it no longer fails). */
export async function replayCase(o: { driver: DataPlaneDriver; runtime?: Runtime; saved: SavedCase; outDir: string; marginMs?: number; statusAliases?: OracleContext['statusAliases'] }): Promise<CaseResult> {
  const counts = emptyCounts();
  // A replay says whether the case still shows its violations, known ones included.
  await using bench = await FuzzBench.start({ driver: o.driver, runtime: o.runtime ?? 'local', workDir: join(o.outDir, `${o.driver.name}-replay`), profile: o.saved.profile, timeoutMs: o.saved.timeoutMs, marginMs: o.marginMs ?? 2000, ...(o.statusAliases ? { statusAliases: o.statusAliases } : {}), counts });
  const r = await bench.runCase(o.saved.fuzzCase);
  return { ...r, violations: [...r.violations, ...r.known] };
}
