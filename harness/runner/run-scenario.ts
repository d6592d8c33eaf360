// Runs one scenario on one data plane: starts the echo backends (in this process, each on its
// own loopback address and a free port), the mock EPP (a child process, so steps can really
// stop/kill/restart it), then the data plane from the route model; runs the steps, judges every
// response and journal entry, and always tears everything down. Never retries.
import { join } from 'node:path';
import { isEppkitError } from '../../core/errors.ts';
import { BBR_DEFAULTS, routeWithDefaults, type BodyMode, type FailureMode, type RouteModel } from '../../core/route-model.ts';
import { EchoBackend, type StartedEchoBackend } from '../backends/echo-backend.ts';
import type { DataPlaneDriver, Feature, Runtime, StartedDataPlane } from '../data-planes/data-plane-driver.ts';
import type { MockEppProcess, JournalEntry } from '../epp/mock-epp-process.ts';
import { TestBed } from '../launch/test-bed.ts';
import type { LoadedScenario } from '../scenarios/load-scenarios.ts';
import { isGroupStep, isRequestStep, type ActionStep, type BackendSpec, type GroupStep, type RequestStep, type Scenario, type Step } from '../scenarios/scenario-schema.ts';
import { resolveString, resolveTemplates, timingMs, type TemplateContext } from '../scenarios/templates.ts';
import { footprint, sampleProcesses } from '../../core/proc-sampler.ts';
import { healthReason, type PlaneHealth } from '../data-planes/plane-health.ts';
import { checkAggregate, checkJournalConnections, checkJournalEntry, checkResponse, servedBy, type Mismatch, type SentRequest } from './expectations.ts';
import { Http1Connection, type Http1Request } from './http1-connection.ts';
import { NO_ANSWER, exchange, type ExchangeResult } from './http-exchange.ts';
import { actionEppConfig, buildPlaneRoute, checkPoolJournals, checkSplit, isMultiPool, journalMarks, requestBaseUrl, startPoolEpps } from './multi-pool-run.ts';
import { prepareBody } from './request-body.ts';
import { RUN_LEAK_BOUNDS, latencyHistogram, latencySummary, leakFinding, type FailureDetail, type PlaneFootprint, type ScenarioResult, type StepResult } from './results.ts';
import { REQUEST_ID_HEADER, entryOfRequest, failingRequest, isCancelled, requestIdOf, requestIds, streamServiceTime } from './request-journal.ts';

export interface RunScenarioOptions {
  loaded: LoadedScenario;
  driver: DataPlaneDriver;
  runtime: Runtime;
  /** This scenario's own folder (logs, configs). */
  workDir: string;
  /** Relative form of workDir for the report. */
  logDir?: string;
  /** A leak over its bound fails the scenario (default: a warning). */
  strict?: boolean;
}

const LOG_EXCERPT = 4000;

/**
 * Features a scenario needs: exactly what it declares. Nothing is implied (the schema refuses a
 * scenario whose route or checks use a feature it does not list), so a headers-only plane runs
 * every scenario that never needs the body at the EPP.
 */
export function requiredFeatures(s: Scenario): Feature[] {
  return [...new Set<Feature>(s.features)];
}

/** The body mode a plane runs a scenario in that does not state one: buffered when it can. */
export function preferredBodyMode(features: ReadonlySet<Feature>): BodyMode {
  if (features.has('body-buffered')) return 'buffered';
  if (features.has('body-streamed')) return 'streamed';
  if (features.has('body-none')) return 'none';
  return 'buffered';
}

/**
 * Timeout, body mode and failure mode of this scenario on this plane: what the scenario states,
 * else what the plane runs with (a plane with fixed settings), else the plane's preference.
 * A plane whose fixed settings contradict what the scenario needs skips it, with the reason.
 */
export function routeSettings(s: Scenario, driver: DataPlaneDriver): { timeoutMs: number; bodyMode: BodyMode; failureMode: FailureMode } | { skip: string } {
  const r = s.setup.route;
  const fixed = driver.fixedSettings?.() ?? {};
  const has = new Set<string>(s.features);
  const needFm: FailureMode | undefined = r.failureMode ?? (has.has('fail-open') ? 'open' : has.has('fail-close') ? 'close' : undefined);
  const where = fixed.source ? ` (${fixed.source})` : '';
  if (r.bodyMode && fixed.bodyMode && r.bodyMode !== fixed.bodyMode) return { skip: `needs body mode ${r.bodyMode}; ${driver.name} runs with ${fixed.bodyMode}${where}` };
  if (needFm && fixed.failureMode && needFm !== fixed.failureMode) return { skip: `needs failure mode ${needFm}; ${driver.name} runs with ${fixed.failureMode}${where}` };
  return {
    timeoutMs: fixed.timeoutMs ?? r.timeoutMs,
    bodyMode: r.bodyMode ?? fixed.bodyMode ?? preferredBodyMode(driver.features),
    failureMode: needFm ?? fixed.failureMode ?? 'close',
  };
}

function defaultIp(backends: readonly BackendSpec[], i: number): string {
  return backends[i]?.ip ?? `127.0.0.${2 + i}`;
}

/** Builds the route from the scenario, with names resolved to addresses. */
export function buildRoute(s: Scenario, eppAddress: string, tpl: TemplateContext, settings: { timeoutMs: number; bodyMode: BodyMode; failureMode: FailureMode }): RouteModel {
  const r = s.setup.route;
  const addr = (x: string): string => tpl.backends.get(x)?.address ?? resolveString(x, tpl);
  const route: Partial<RouteModel> & { eppAddress: string } = {
    eppAddress,
    pathPrefix: r.pathPrefix,
    failureMode: settings.failureMode,
    timeoutMs: settings.timeoutMs,
    bodyMode: settings.bodyMode,
    fallbackEndpoints: r.fallback.map(addr),
    responseProcessing: r.responseProcessing,
    allow: r.allow.map(addr),
  };
  if (r.maxBodyBytes !== undefined) route.maxBodyBytes = r.maxBodyBytes;
  if (r.subsetHint) route.subsetHint = r.subsetHint.map(addr);
  if (r.bbr) route.bbr = { header: r.bbr.header, maxBodyBytes: r.bbr.maxBodyBytes ?? BBR_DEFAULTS.maxBodyBytes, requireModel: r.bbr.requireModel };
  return routeWithDefaults(route);
}

function eppConfig(cfg: Record<string, unknown>, s: Scenario, tpl: TemplateContext): Record<string, unknown> {
  const resolved = resolveTemplates(cfg, tpl);
  if (resolved.endpoints === undefined) {
    resolved.endpoints = s.setup.backends.filter((b) => b.inPool).map((b) => tpl.backends.get(b.name)?.address);
  }
  return resolved;
}

/** The data plane crashed, alerted or exited: fails the scenario whatever the statuses said. */
class PlaneFailure extends Error {
  readonly health: PlaneHealth;
  constructor(health: PlaneHealth) {
    super(healthReason(health) ?? 'data plane unhealthy');
    this.health = health;
  }
}

/** Throws PlaneFailure when the plane reports a problem. */
function assertHealthy(dp: StartedDataPlane): void {
  const h = dp.health();
  if (!h.ok) throw new PlaneFailure(h);
}

/**
 * The expected difference that applies to this step on this plane: the plane file's own
 * (`overrides` of a plane file, by scenario and step) over the scenario's (`overrides.<plane>`).
 */
function stepOverride(step: RequestStep, index: number, name: string, driver: DataPlaneDriver, scenario: string): RequestStep['overrides'] extends Record<string, infer O> | undefined ? O | undefined : never {
  type O = NonNullable<RequestStep['overrides']>[string];
  const own = step.overrides?.[driver.name];
  const fromPlane = driver.overridesFor?.(scenario).filter((o) => (o.step === undefined && !o.skip) || o.step === index + 1 || o.step === name);
  if (!fromPlane || fromPlane.length === 0) return own;
  let merged: O = own ? { ...own } : { why: '' };
  for (const o of fromPlane) {
    merged = {
      ...merged,
      why: [merged.why, o.why].filter(Boolean).join('; '),
      ...(o.skip ? { skip: true } : {}),
      ...(o.expect ? { expect: { ...(merged.expect ?? {}), ...(o.expect as O['expect']) } } : {}),
      ...(o.epp ? { epp: { ...(merged.epp ?? {}), ...(o.epp as O['epp']) } } : {}),
    };
  }
  return merged;
}

class StepFailure extends Error {
  readonly mismatches: Mismatch[];
  /** The failing request's id and its journal entry (or why there is none). */
  readonly evidence: Pick<FailureDetail, 'request' | 'journalEntry' | 'journalNote'>;
  constructor(mismatches: Mismatch[], evidence: Pick<FailureDetail, 'request' | 'journalEntry' | 'journalNote'>) {
    super(mismatches.map((m) => m.what).join('; '));
    this.mismatches = mismatches;
    this.evidence = evidence;
  }
}

function stepName(step: Step, i: number, tpl: TemplateContext): string {
  if (step.name) return step.name;
  if (isGroupStep(step)) return 'pipelined' in step ? `pipelined: ${step.pipelined.length} requests` : `parallel: ${step.parallel.length} steps`;
  if ('action' in step) return `${step.action}${step.backend ? ` ${step.backend}` : ''}${step.ms !== undefined ? ` ${timingMs(step.ms, tpl)}ms` : ''}`;
  return `${step.request.method} ${step.request.path}${step.request.repeat > 1 ? ` x${step.request.repeat}` : ''}` || `step ${i + 1}`;
}

export async function runScenario(opts: RunScenarioOptions): Promise<ScenarioResult> {
  const { loaded, driver, runtime, workDir } = opts;
  const s = loaded.scenario;
  const started = performance.now();
  const base: Omit<ScenarioResult, 'status' | 'durationMs'> = {
    name: s.name,
    dataPlane: driver.name,
    file: loaded.file,
    description: s.description,
    tags: [...s.tags],
    features: requiredFeatures(s),
    steps: [],
  };
  const finish = (status: ScenarioResult['status'], extra: Partial<ScenarioResult> = {}): ScenarioResult => ({
    ...base,
    status,
    durationMs: Math.round(performance.now() - started),
    ...extra,
  });

  const missing = requiredFeatures(s).filter((f) => !driver.features.has(f));
  if (missing.length > 0) return finish('skipped', { reason: `${driver.name} does not support: ${missing.join(', ')}`, missingFeatures: missing });
  const planeSkip = driver.overridesFor?.(s.name).find((o) => o.skip && o.step === undefined);
  if (planeSkip) return finish('skipped', { reason: `skipped by ${driver.name}'s overrides: ${planeSkip.why}`, override: planeSkip.why });
  const settings = routeSettings(s, driver);
  if ('skip' in settings) return finish('skipped', { reason: settings.skip });
  // Ask the driver about the route before starting anything (placeholder addresses).
  if (driver.unsupportedRoute) {
    const probe = new Map(s.setup.backends.map((b, i) => [b.name, { ip: defaultIp(s.setup.backends, i), port: 1, address: `${defaultIp(s.setup.backends, i)}:1` }]));
    const probeTpl = { backends: probe, epp: '127.0.0.1:1', timeoutMs: settings.timeoutMs };
    const why = driver.unsupportedRoute(isMultiPool(s) ? buildPlaneRoute(s, () => '127.0.0.1:1', probeTpl, settings) : buildRoute(s, '127.0.0.1:1', probeTpl, settings));
    if (why) return finish('skipped', { reason: why });
  }

  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), s.timeoutMs);
  // Backends, mock EPPs and the data plane: stopped together at the end, last started first.
  const bed = new TestBed({ workDir, runtime, signal: ac.signal });
  const backends = new Map<string, StartedEchoBackend>();
  const backendAddrs = new Map<string, { ip: string; port: number; address: string }>();
  let epp: MockEppProcess | undefined;
  // multi-pool: every pool's EPP by pool name (epp is the first pool's); empty otherwise.
  let poolEpps = new Map<string, MockEppProcess>();
  let dp: StartedDataPlane | undefined;
  const latencies: number[] = [];
  const steps: StepResult[] = [];
  let failure: FailureDetail | undefined;
  let failReason: string | undefined;
  let stepLabel = 'setup';
  const tpl: TemplateContext = { backends: backendAddrs, epp: '', timeoutMs: settings.timeoutMs };
  const conns = new Map<string, Http1Connection>();
  let footprintBefore: PlaneFootprint | undefined;
  let footprintAfter: PlaneFootprint | undefined;

  const startBackend = async (b: BackendSpec, i: number, port = 0): Promise<void> => {
    const started = await bed.withEchoBackend(new EchoBackend(b.name).withHost(defaultIp(s.setup.backends, i)).withPort(port).withLatency(b.latencyMs).withErrorStatus(b.errorStatus));
    backends.set(b.name, started);
    backendAddrs.set(b.name, { ip: started.ip, port: started.port, address: started.address });
  };

  try {
    for (const [i, b] of s.setup.backends.entries()) await startBackend(b, i);
    let route: RouteModel;
    if (isMultiPool(s)) {
      poolEpps = await startPoolEpps(s, tpl, bed);
      epp = [...poolEpps.values()][0];
      if (!epp) throw new Error('multi-pool scenario without pools');
      tpl.epp = epp.address;
      route = buildPlaneRoute(s, (pool) => poolEpps.get(pool)?.address ?? '', tpl, settings);
    } else {
      epp = await bed.withMockEpp({ port: driver.fixedEppPort?.() ?? 0, config: eppConfig(s.setup.epp, s, tpl) });
      tpl.epp = epp.address;
      route = buildRoute(s, epp.address, tpl, settings);
    }
    if (route.bbr && driver.bbrViaExtProc) {
      // A second mock in the BBR role, chained before the EPP by the plane itself.
      const bbrEpp = await bed.withBbrMock(route.bbr);
      route.bbr = { ...route.bbr, extProcAddress: bbrEpp.address };
    }
    dp = await bed.withDataPlane(driver, route);
    footprintBefore = planeFootprint(dp);
    // Whatever reached the EPP while the data plane started (probes) is not the scenario's.
    await epp.clearJournal();
    for (const e of poolEpps.values()) if (e !== epp) await e.clearJournal();

    for (const [i, step] of s.steps.entries()) {
      if (ac.signal.aborted) throw new Error(`scenario timed out after ${s.timeoutMs} ms`);
      const name = stepName(step, i, tpl);
      stepLabel = `step ${i + 1} (${name})`;
      const t0 = performance.now();
      if (!isRequestStep(step) && !isGroupStep(step)) {
        if (poolEpps.size > 0 && (step.action.endsWith('-epp') || step.action === 'clear-journal')) {
          // multi-pool: the action is for its pool's EPP, or for every pool's.
          for (const [pool, e] of poolEpps) {
            if (step.pool && step.pool !== pool) continue;
            await runAction(step.action === 'set-epp' ? { ...step, epp: actionEppConfig(s, step, tpl, pool) } : step, { epp: e, backends, startBackend, s, tpl, resolved: true });
          }
        } else await runAction(step, { epp, backends, startBackend, s, tpl });
        steps.push({ index: i, name, kind: 'action', status: 'passed', durationMs: Math.round(performance.now() - t0) });
        assertHealthy(dp);
        continue;
      }
      const ctx: RequestStepContext = { ...requestDeadline(s, settings.timeoutMs), dp, epp, tpl, dir: loaded.dir, signal: ac.signal, s, poolEpps, conns, nextRequestId: requestIds(i + 1) };
      let out: RequestStepOutcome;
      let attempts = 0;
      let overrideWhy: string | undefined;
      if (isGroupStep(step)) {
        const g = await runGroupStep(step, driver.name, ctx);
        out = { results: g.results, mismatches: g.mismatches, stepEntries: [] };
        if (g.overrides.length) overrideWhy = g.overrides.join('; ');
      } else {
        const override = stepOverride(step, i, name, driver, s.name);
        if (override?.skip) {
          steps.push({ index: i, name, kind: 'request', status: 'skipped', durationMs: 0, override: override.why, reason: override.why });
          continue;
        }
        overrideWhy = override?.why;
        const expect = resolveTemplates(override?.expect ? { ...step.expect, ...override.expect } : step.expect, tpl);
        const eppExpect = resolveTemplates(override?.epp ? { ...(step.epp ?? {}), ...override.epp } : step.epp, tpl);
        const deadline = step.eventually ? performance.now() + step.eventually.withinMs : 0;
        for (;;) {
          attempts++;
          out = await runRequestStep(step, expect, eppExpect, ctx);
          if (out.mismatches.length === 0 || !step.eventually || performance.now() >= deadline || ac.signal.aborted) break;
          await new Promise((r) => setTimeout(r, step.eventually?.intervalMs ?? 100));
        }
      }
      const { results, mismatches, stepEntries } = out;
      const stepLatencies = results.filter((r) => !r.aborted && r.status !== undefined).map((r) => r.latencyMs);
      latencies.push(...stepLatencies);
      const statuses: Record<string, number> = {};
      const served: Record<string, number> = {};
      for (const r of results) {
        const k = r.aborted ? 'aborted' : r.status !== undefined ? String(r.status) : (r.error ?? 'error');
        statuses[k] = (statuses[k] ?? 0) + 1;
        if (r.status !== undefined) served[servedBy(r)] = (served[servedBy(r)] ?? 0) + 1;
      }
      const res: StepResult = {
        index: i,
        name,
        kind: 'request',
        status: mismatches.length ? 'failed' : 'passed',
        durationMs: Math.round(performance.now() - t0),
        requests: results.length,
        statuses,
        servedBy: served,
      };
      const stepLatency = latencySummary(stepLatencies);
      if (stepLatency) res.latencyMs = stepLatency;
      if (isRequestStep(step) && step.eventually) res.attempts = attempts;
      if (overrideWhy) res.override = overrideWhy;
      if (mismatches.length) res.mismatches = mismatches.slice(0, 20);
      steps.push(res);
      // A crash explains the mismatches better than they explain themselves: it goes first.
      const h = dp.health();
      if (!h.ok) {
        res.status = 'failed';
        throw new PlaneFailure(h);
      }
      if (mismatches.length) throw new StepFailure(mismatches, await failureEvidence(mismatches, results, stepEntries, epp, poolEpps));
    }
  } catch (e) {
    const dpLog = dp?.logs() ?? '';
    const eppLog = poolEpps.size > 0 ? [...poolEpps].map(([n, e]) => `--- EPP of pool ${n} ---\n${e.logs()}`).join('\n') : (epp?.logs() ?? '');
    const excerpt = (x: string): string => (x.length > LOG_EXCERPT ? `…${x.slice(-LOG_EXCERPT)}` : x);
    if (e instanceof PlaneFailure) {
      failReason = `${stepLabel}: ${e.message}`;
      failure = { step: stepLabel, mismatches: planeMismatches(e.health), dataPlaneLog: excerpt(dpLog), eppLog: excerpt(eppLog) };
    } else if (e instanceof StepFailure) {
      failReason = `${stepLabel}: ${e.mismatches.slice(0, 3).map((m) => m.what).join('; ')}${e.mismatches.length > 3 ? ` (+${e.mismatches.length - 3} more)` : ''}`;
      failure = { step: stepLabel, mismatches: e.mismatches, ...e.evidence, dataPlaneLog: excerpt(dpLog), eppLog: excerpt(eppLog) };
    } else {
      const msg = ac.signal.aborted ? `timed out after ${s.timeoutMs} ms` : isEppkitError(e) ? e.format() : (e as Error)?.message ?? String(e);
      failReason = `${stepLabel}: ${msg.split('\n')[0]}`;
      failure = { step: stepLabel, mismatches: [{ what: 'error', expected: 'no error', received: msg }], dataPlaneLog: excerpt(dpLog), eppLog: excerpt(eppLog) };
    }
    if (ac.signal.aborted) failReason = `${stepLabel}: timed out after ${s.timeoutMs} ms`;
  }

  // EPP service time over every stream of the scenario, before the mock goes away.
  const journal: JournalEntry[] = [];
  for (const e of poolEpps.size > 0 ? poolEpps.values() : [epp]) journal.push(...((await e?.journal().catch(() => [] as JournalEntry[])) ?? []));
  const service = journal.map(streamServiceTime).filter((x): x is number => x !== undefined);
  const cancelled = journal.filter(isCancelled).length;
  clearTimeout(timer);
  for (const c of conns.values()) c.close();
  footprintAfter = dp ? planeFootprint(dp) : undefined;
  await dp?.stop().catch(() => {});
  // After stop every log is flushed: a crash the last step caused (the master logs a worker's
  // signal a moment after the client saw the reset) is found here if not before.
  const finalHealth = dp?.health();
  if (finalHealth && !finalHealth.ok && !(failure && failure.mismatches.some((m) => m.what.startsWith('data plane ')))) {
    const why = healthReason(finalHealth) ?? 'data plane unhealthy';
    const excerpt = (x: string): string => (x.length > LOG_EXCERPT ? `…${x.slice(-LOG_EXCERPT)}` : x);
    if (failure) {
      failReason = `${why}; then ${failReason ?? ''}`;
      failure.mismatches.unshift(...planeMismatches(finalHealth));
      failure.dataPlaneLog = excerpt(dp?.logs() ?? '');
    } else {
      failReason = `at scenario end: ${why}`;
      failure = { step: 'scenario end', mismatches: planeMismatches(finalHealth), dataPlaneLog: excerpt(dp?.logs() ?? ''), eppLog: excerpt(epp?.logs() ?? '') };
    }
  }
  await bed[Symbol.asyncDispose]();

  const extra: Partial<ScenarioResult> = { steps };
  if (finalHealth && !finalHealth.ok) extra.planeProblems = finalHealth.problems;
  let leak: string | undefined;
  if (footprintBefore && footprintAfter) {
    extra.planeFootprint = { before: footprintBefore, after: footprintAfter };
    leak = leakFinding(footprintBefore, footprintAfter, RUN_LEAK_BOUNDS);
    if (leak && !opts.strict) extra.warnings = [`${leak} over this scenario (a failure with --strict)`];
  }
  const lat = latencySummary(latencies);
  if (lat) extra.latencyMs = lat;
  const hist = latencyHistogram(latencies);
  if (hist) extra.latencyHistogram = hist;
  const svc = latencySummary(service);
  if (svc) extra.eppServiceTimeMs = svc;
  if (svc && cancelled > 0) extra.eppCancelledStreams = cancelled;
  if (opts.logDir) extra.logDir = opts.logDir;
  if (leak && opts.strict && !failure) {
    failReason = `at scenario end: ${leak} (--strict)`;
    failure = { step: 'scenario end', mismatches: [{ what: 'data plane leak', expected: `growth within +${RUN_LEAK_BOUNDS.fds} fds and +${RUN_LEAK_BOUNDS.rssBytes / 1048576} MiB RSS`, received: leak }], dataPlaneLog: '', eppLog: '' };
  }
  if (failure) return finish('failed', { ...extra, reason: failReason, failure });
  return finish('passed', extra);
}

interface RequestStepOutcome {
  results: ExchangeResult[];
  mismatches: Mismatch[];
  stepEntries: JournalEntry[];
}

interface RequestStepContext {
  dp: StartedDataPlane;
  epp: MockEppProcess;
  tpl: TemplateContext;
  dir: string;
  signal: AbortSignal;
  s: Scenario;
  /** multi-pool: every pool's EPP (empty otherwise). */
  poolEpps: ReadonlyMap<string, MockEppProcess>;
  /** A request's deadline when its step sets none (from the route), and how it was derived. */
  defaultDeadlineMs: number;
  deadlineWhy: string;
  /** Named keep-alive connections of this scenario (request.connection). */
  conns: Map<string, Http1Connection>;
  /** The id of the step's next request (its eppkit-request-id header). */
  nextRequestId: () => string;
}

interface PreparedRequest {
  url: string;
  /** Path and query as on the request line. */
  target: string;
  method: string;
  headers: Record<string, string>;
  body: ReturnType<typeof prepareBody>;
  sent: SentRequest;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function prepareRequest(step: RequestStep, c: RequestStepContext): PreparedRequest {
  const { tpl } = c;
  const rq = step.request;
  const body = prepareBody(rq.body, c.dir, (x) => resolveString(x, tpl));
  const headers: Record<string, string> = {};
  if (body?.contentType) headers['content-type'] = body.contentType;
  for (const [k, v] of Object.entries(rq.headers)) headers[k.toLowerCase()] = resolveString(v, tpl);
  let query = '';
  if (typeof rq.query === 'string') query = resolveString(rq.query, tpl);
  else if (Array.isArray(rq.query)) query = new URLSearchParams(rq.query.map(([k, v]) => [k, resolveString(v, tpl)])).toString();
  else if (rq.query) query = new URLSearchParams(Object.entries(rq.query).map(([k, v]) => [k, resolveString(v, tpl)])).toString();
  const target = `${resolveString(rq.path, tpl)}${query ? `?${query.replace(/^\?/, '')}` : ''}`;
  return { url: `${requestBaseUrl(c.s, step, c.dp)}${target}`, target, method: rq.method, headers, body, sent: { bodyBytes: body?.bytes.length ?? 0, bodySha256: body?.sha256 ?? EMPTY_SHA256 } };
}

function http1Request(rq: RequestStep['request'], p: PreparedRequest, c: RequestStepContext, deadline = stepDeadline(rq, c)): Http1Request {
  const trailers = rq.trailers ? Object.fromEntries(Object.entries(rq.trailers).map(([k, v]) => [k, resolveString(v, c.tpl)])) : undefined;
  return {
    method: p.method,
    target: p.target,
    headers: { ...p.headers, [REQUEST_ID_HEADER]: c.nextRequestId() },
    ...(p.body ? { body: p.body.bytes } : {}),
    ...(rq.chunked ? { chunked: rq.chunked } : {}),
    ...(trailers ? { trailers } : {}),
    ...(rq.expectContinue ? { expectContinue: true } : {}),
    ...(rq.abortAfterMs !== undefined ? { abortAfterMs: timingMs(rq.abortAfterMs, c.tpl) } : {}),
    timeoutMs: deadline,
  };
}

/**
 * Requests on one raw HTTP/1.1 connection: the named keep-alive one (opened on first use, or
 * again when the plane closed it), or a fresh one closed afterwards. Several = pipelined.
 */
async function sendHttp1(reqs: Http1Request[], name: string | undefined, c: RequestStepContext): Promise<ExchangeResult[]> {
  const u = new URL(c.dp.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 80);
  let conn = name ? c.conns.get(name) : undefined;
  const reused = conn?.usable === true && conn.answered > 0;
  if (!conn?.usable) {
    conn?.close();
    try {
      conn = await Http1Connection.open(host, port, reqs[0]?.timeoutMs ?? 15_000);
    } catch (e) {
      return reqs.map((q) => withRequestId({ headers: {}, body: Buffer.alloc(0), bodySha256: EMPTY_SHA256, latencyMs: 0, endedAt: Date.now(), error: (e as Error).message, aborted: false }, q.headers[REQUEST_ID_HEADER]));
    }
    if (name) c.conns.set(name, conn);
  }
  const out = await conn.exchange(reqs, u.host, reused);
  if (!name) conn.close();
  return out.map((r, i) => withRequestId(r, reqs[i]?.headers[REQUEST_ID_HEADER]));
}

/** The step's own timeoutMs, else the deadline derived from the route. */
function stepDeadline(rq: RequestStep['request'], c: RequestStepContext): number {
  return rq.timeoutMs !== undefined ? timingMs(rq.timeoutMs, c.tpl) : c.defaultDeadlineMs;
}

/** Sends one request of a step the way the step asks (fresh connection, named one, raw HTTP/1.1). */
async function sendOne(rq: RequestStep['request'], p: PreparedRequest, c: RequestStepContext): Promise<ExchangeResult> {
  const deadline = stepDeadline(rq, c);
  if (rq.connection || rq.expectContinue || rq.trailers) return (await sendHttp1([http1Request(rq, p, c, deadline)], rq.connection, c))[0] as ExchangeResult;
  const id = c.nextRequestId();
  const r = await exchange({
    url: p.url,
    method: p.method,
    headers: { ...p.headers, [REQUEST_ID_HEADER]: id },
    ...(p.body ? { body: p.body.bytes } : {}),
    ...(rq.chunked ? { chunked: rq.chunked } : {}),
    ...(rq.abortAfterMs !== undefined ? { abortAfterMs: timingMs(rq.abortAfterMs, c.tpl) } : {}),
    timeoutMs: deadline,
    signal: c.signal,
  });
  return withRequestId(r, id);
}

function withRequestId(r: ExchangeResult, id: string | undefined): ExchangeResult {
  if (id !== undefined) r.requestId = id;
  return r;
}

/**
 * The failing request of a step and its EPP journal entry, found by the request's id header in
 * the step's entries, then in every EPP's whole journal (a stream that started late); when it is
 * not there, say so instead of showing another request's entry.
 */
async function failureEvidence(
  mismatches: readonly Mismatch[],
  results: readonly ExchangeResult[],
  stepEntries: readonly JournalEntry[],
  epp: MockEppProcess,
  poolEpps: ReadonlyMap<string, MockEppProcess>,
): Promise<Pick<FailureDetail, 'request' | 'journalEntry' | 'journalNote'>> {
  const id = failingRequest(mismatches, results);
  if (id === undefined) return { journalNote: `no single request failed (${results.length} requests): the step's EPP streams are in the journal` };
  let entry = entryOfRequest(stepEntries, id);
  for (const e of entry ? [] : new Set([epp, ...poolEpps.values()])) {
    entry = entryOfRequest(await e.journal().catch(() => [] as JournalEntry[]), id);
    if (entry) break;
  }
  if (entry) return { request: id, journalEntry: entry };
  return { request: id, journalNote: `request ${id} has no EPP journal entry: it never reached the EPP (or the data plane did not pass its ${REQUEST_ID_HEADER} header on)` };
}

/** Every response of a step against its expectations (one line per distinct mismatch). */
function judgeResponses(expect: RequestStep['expect'], results: readonly ExchangeResult[], sent: SentRequest, label = ''): Mismatch[] {
  const mismatches: Mismatch[] = [];
  const seen = new Set<string>();
  for (const [j, r] of results.entries()) {
    for (const m of checkResponse(expect, r, sent)) {
      const key = `${m.what}|${JSON.stringify(m.received)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const what = results.length > 1 ? `request ${j + 1}/${results.length}: ${m.what}` : m.what;
      mismatches.push({ ...m, what: `${label}${what}`, ...(r.requestId !== undefined ? { request: r.requestId } : {}) });
    }
  }
  mismatches.push(...checkAggregate(expect, results).map((m) => ({ ...m, what: `${label}${m.what}` })));
  return mismatches;
}

/** Sends a step's requests (repeat × concurrency) and judges responses and journal entries. */
async function runRequestStep(step: RequestStep, expect: RequestStep['expect'], eppExpect: RequestStep['epp'], c: RequestStepContext): Promise<RequestStepOutcome> {
  const rq = step.request;
  const p = prepareRequest(step, c);
  // Always taken: a failing step's journal entries can name why it failed (a deadlock).
  const journalBefore = (await c.epp.journal()).length;
  const poolMarks = step.epps ? await journalMarks(c.poolEpps) : new Map<string, number>();

  const deadline = stepDeadline(rq, c);
  let hung = false;
  const results: ExchangeResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    // A plane that left one request unanswered is hung: the rest of the step would only wait too.
    while (next < rq.repeat && !c.signal.aborted && !hung) {
      next++;
      const r = await sendOne(rq, p, c);
      if (r.error?.startsWith(NO_ANSWER)) hung = true;
      results.push(r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(rq.concurrency, rq.repeat) }, worker));
  const { sent } = p;
  const mismatches = judgeResponses(expect, results, sent);
  if (hung) {
    const why = rq.timeoutMs !== undefined ? "the step's timeoutMs" : c.deadlineWhy;
    mismatches.unshift({ what: `hang: no answer within ${deadline} ms (${why})`, expected: 'an HTTP response', received: `${results.filter((r) => r.error?.startsWith(NO_ANSWER)).length} of ${results.length} requests unanswered` });
  }
  let stepEntries: JournalEntry[] = [];
  if (eppExpect) {
    const want = eppExpect.entries ?? results.length;
    const all = await c.epp.waitForJournal(journalBefore + want, 5000);
    stepEntries = all.slice(journalBefore);
    if (eppExpect.endsWithinMs !== undefined) stepEntries = await waitForStreamsToEnd(c.epp, journalBefore, stepEntries, results, eppExpect.endsWithinMs);
    if (stepEntries.length !== want) mismatches.push({ what: 'EPP journal entries (streams) for this step', expected: want, received: stepEntries.length });
    for (const [j, e] of stepEntries.entries()) {
      const id = requestIdOf(e);
      const prefix = stepEntries.length > 1 ? `entry ${j + 1}${id ? ` (request ${id})` : ''}:` : '';
      mismatches.push(...checkJournalEntry(eppExpect, e, sent, prefix).map((m) => (id !== undefined ? { ...m, request: id } : m)));
    }
    if (eppExpect.endsWithinMs !== undefined) mismatches.push(...checkStreamsEnded(stepEntries, results, eppExpect.endsWithinMs));
    mismatches.push(...checkJournalConnections(eppExpect, stepEntries));
  }
  if (step.epps) {
    const pools = await checkPoolJournals(resolveTemplates(step.epps, c.tpl), c.poolEpps, poolMarks, results.length, sent);
    mismatches.push(...pools.mismatches);
    stepEntries = [...stepEntries, ...pools.entries];
    if (expect.split) mismatches.push(...checkSplit(expect.split, c.s, results, pools.byPool).mismatches);
  } else if (expect.split) mismatches.push(...checkSplit(expect.split, c.s, results).mismatches);
  if (mismatches.length > 0) {
    // The mock knows a deadlock the plane cannot tell apart from a slow EPP: say it first.
    const entries = stepEntries.length > 0 ? stepEntries : (await c.epp.journal().catch(() => [] as JournalEntry[])).slice(journalBefore);
    const deadlock = entries.flatMap((e) => (Array.isArray(e.problems) ? (e.problems as string[]) : []).filter((p) => p.startsWith(DEADLOCK_PROBLEM)))[0];
    if (deadlock !== undefined) {
      mismatches.unshift({
        what: deadlock.slice(DEADLOCK_PROBLEM.length + 2),
        expected: 'the data plane sends the request body without waiting for the request-headers answer',
        received: 'it waited for the request-headers answer (the EPP journal recorded it)',
      });
    }
  }
  return { results, mismatches, stepEntries };
}

/**
 * A group: request steps at the same time (parallel, each staggered by startAfterMs) or written
 * back to back on one connection (pipelined). Each sub-step is judged on its own expectations,
 * with its per-plane override.
 */
async function runGroupStep(step: GroupStep, planeName: string, c: RequestStepContext): Promise<{ results: ExchangeResult[]; mismatches: Mismatch[]; overrides: string[] }> {
  const pipelined = 'pipelined' in step;
  const subs = (pipelined ? step.pipelined : step.parallel).map((sub, j) => {
    const o = sub.overrides?.[planeName];
    const expect = resolveTemplates(o?.expect ? { ...sub.expect, ...o.expect } : sub.expect, c.tpl);
    return { sub, o, expect, label: `${sub.name ?? `#${j + 1} ${sub.request.method} ${sub.request.path}`}: `, p: prepareRequest(sub, c) };
  });
  const active = subs.filter((x) => !x.o?.skip);
  let perSub: ExchangeResult[][];
  if (pipelined) {
    const reqs = active.flatMap((x) => Array.from({ length: x.sub.request.repeat }, () => http1Request(x.sub.request, x.p, c)));
    const all = await sendHttp1(reqs, step.connection, c);
    let at = 0;
    perSub = active.map((x) => all.slice(at, (at += x.sub.request.repeat)));
  } else {
    perSub = await Promise.all(
      active.map(async (x) => {
        const rq = x.sub.request;
        const after = rq.startAfterMs;
        if (after !== undefined) await new Promise((r) => setTimeout(r, timingMs(after, c.tpl)));
        const out: ExchangeResult[] = [];
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < rq.repeat && !c.signal.aborted) {
            next++;
            out.push(await sendOne(rq, x.p, c));
          }
        };
        await Promise.all(Array.from({ length: Math.min(rq.concurrency, rq.repeat) }, worker));
        return out;
      }),
    );
  }
  const mismatches = active.flatMap((x, j) => judgeResponses(x.expect, perSub[j] ?? [], x.p.sent, x.label));
  return { results: perSub.flat(), mismatches, overrides: subs.filter((x) => x.o).map((x) => `${x.label}${x.o?.why}`) };
}

/** The problem the mock records for a plane that waits for the headers answer before sending the body. */
const DEADLOCK_PROBLEM = 'headers-answer-deadlock';

interface ActionContext {
  epp: MockEppProcess;
  backends: Map<string, StartedEchoBackend>;
  startBackend: (b: BackendSpec, i: number, port?: number) => Promise<void>;
  s: Scenario;
  tpl: TemplateContext;
  /** set-epp's config is already resolved (multi-pool). */
  resolved?: boolean;
}

async function runAction(step: ActionStep, c: ActionContext): Promise<void> {
  switch (step.action) {
    case 'stop-epp':
      return c.epp.stop();
    case 'kill-epp':
      return c.epp.kill();
    case 'restart-epp':
      return c.epp.restart();
    case 'start-epp':
      return c.epp.startAgain();
    case 'set-epp':
      return c.epp.setConfig(c.resolved ? (step.epp ?? {}) : eppConfig(step.epp ?? {}, c.s, c.tpl));
    case 'clear-journal':
      return c.epp.clearJournal();
    case 'sleep':
      return new Promise((r) => setTimeout(r, timingMs(step.ms ?? 0, c.tpl)));
    case 'stop-backend': {
      const b = c.backends.get(step.backend ?? '');
      return b?.stop();
    }
    case 'start-backend': {
      const i = c.s.setup.backends.findIndex((b) => b.name === step.backend);
      const spec = c.s.setup.backends[i];
      const prev = c.backends.get(step.backend ?? '');
      if (!spec) return;
      return c.startBackend(spec, i, prev?.port ?? 0);
    }
  }
}

/** Margin over the EPP timeout and the backend's latency before a request counts as hung. */
export const DEADLINE_MARGIN_MS = 3000;

/**
 * A request's default deadline: the plane must have answered (a route, its failure mode's
 * status, or the EPP's) once the EPP's message timeout has passed and the backend has answered;
 * a generic 30 s would let a hung plane eat the scenario's whole budget.
 */
export function requestDeadline(s: Scenario, eppTimeoutMs: number): { defaultDeadlineMs: number; deadlineWhy: string } {
  const backendMs = Math.max(0, ...s.setup.backends.map((b) => b.latencyMs ?? 0));
  const epp = eppTimeoutMs;
  return {
    defaultDeadlineMs: epp + backendMs + DEADLINE_MARGIN_MS,
    deadlineWhy: `EPP timeout ${epp} ms${backendMs ? ` + backend latency ${backendMs} ms` : ''} + ${DEADLINE_MARGIN_MS} ms margin`,
  };
}

/** Waits (at most until the bound has passed) for the step's streams to end, then re-reads them. */
async function waitForStreamsToEnd(epp: MockEppProcess, from: number, entries: JournalEntry[], results: ExchangeResult[], boundMs: number): Promise<JournalEntry[]> {
  const clientEnd = Math.max(0, ...results.map((r) => r.endedAt));
  let now = entries;
  while (now.some((e) => !e.endedAt) && Date.now() < clientEnd + boundMs + 500) {
    await new Promise((r) => setTimeout(r, 50));
    now = (await epp.journal()).slice(from, from + entries.length);
  }
  return now;
}

/** Each stream ended within `boundMs` of the client's end (journal timestamps, same clock). */
function checkStreamsEnded(entries: JournalEntry[], results: ExchangeResult[], boundMs: number): Mismatch[] {
  const clientEnd = Math.max(0, ...results.map((r) => r.endedAt));
  const out: Mismatch[] = [];
  for (const [j, e] of entries.entries()) {
    const label = entries.length > 1 ? `entry ${j + 1}: ` : '';
    if (!e.endedAt) {
      out.push({ what: `${label}EPP stream still open ${Math.round(Date.now() - clientEnd)} ms after the client left (bound ${boundMs} ms)`, expected: `ended within ${boundMs} ms`, received: 'still open' });
      continue;
    }
    const lag = Date.parse(String(e.endedAt)) - clientEnd;
    if (lag > boundMs) out.push({ what: `${label}EPP stream ended ${lag} ms after the client left (bound ${boundMs} ms)`, expected: `<= ${boundMs} ms`, received: `${lag} ms` });
  }
  return out;
}

/** Plane problems as mismatches (what the report shows for a failed step). */
function planeMismatches(h: PlaneHealth): Mismatch[] {
  return h.problems.slice(0, 10).map((p) => ({ what: `data plane ${p.kind} (${p.source})`, expected: 'no crash, alert or exit', received: p.line }));
}

/** RSS and fds summed over the plane's processes now (leak checks compare two of these). */
export function planeFootprint(dp: StartedDataPlane): PlaneFootprint | undefined {
  const samples = sampleProcesses(dp.pids());
  if (samples.length === 0) return undefined;
  return footprint(samples);
}

export function scenarioWorkDir(reportDir: string, scenario: string, dataPlane: string): string {
  return join(reportDir, 'logs', `${scenario}--${dataPlane}`);
}
