// Runs scenarios × data planes with bounded concurrency (each pair starts its own mock EPP,
// backends and data plane on free ports, so pairs are independent), feeding every reporter.
// Data planes that need a fixed mock EPP port (external) run their scenarios one at a time.
// No retries. --bail stops starting new pairs after the first failure.
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { relative } from 'node:path';
import type { DataPlaneDriver, Runtime } from '../data-planes/data-plane-driver.ts';
import type { Reporter } from '../reporters/reporter.ts';
import type { LoadedScenario } from '../scenarios/load-scenarios.ts';
import { appliedOverrides, coverageOf } from './coverage.ts';
import { summarize, type RunReport, type ScenarioResult } from './results.ts';
import { runScenario, scenarioWorkDir } from './run-scenario.ts';

export interface RunOptions {
  scenarios: LoadedScenario[];
  drivers: DataPlaneDriver[];
  runtime: Runtime;
  reportDir: string;
  reporters: Reporter[];
  /** Pairs run at once. Default: min(2, cores). */
  concurrency?: number;
  bail?: boolean;
  /** The command line, recorded in results.json (the matrix shows it). */
  command?: string;
  /** Leaks over their bound fail the scenario instead of warning. */
  strict?: boolean;
}

export function defaultConcurrency(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

async function emit<K extends keyof Reporter>(reporters: Reporter[], hook: K, arg: Parameters<NonNullable<Reporter[K]>>[0]): Promise<void> {
  for (const r of reporters) {
    const fn = r[hook] as ((a: typeof arg) => void | Promise<void>) | undefined;
    if (fn) await fn.call(r, arg);
  }
}

export async function runAll(opts: RunOptions): Promise<RunReport> {
  const startedAt = new Date();
  const t0 = performance.now();
  mkdirSync(opts.reportDir, { recursive: true });
  const availability = await Promise.all(opts.drivers.map(async (d) => ({ d, a: await d.available(opts.runtime) })));
  const pairs: Array<{ loaded: LoadedScenario; driver: DataPlaneDriver; unavailable?: string }> = [];
  for (const { d, a } of availability) {
    for (const loaded of opts.scenarios) pairs.push(a.ok ? { loaded, driver: d } : { loaded, driver: d, unavailable: `data plane ${d.name} is not available: ${a.reason}` });
  }
  await emit(opts.reporters, 'onRunStart', {
    total: pairs.length,
    dataPlanes: opts.drivers.map((d) => d.name),
    scenarios: opts.scenarios.map((s) => s.scenario.name),
    reportDir: opts.reportDir,
  });

  const results: ScenarioResult[] = new Array(pairs.length);
  let bailed = false;
  const exclusive = new Map<string, Promise<void>>();
  const runPair = async (i: number): Promise<void> => {
    const p = pairs[i];
    if (!p) return;
    const s = p.loaded.scenario;
    if (p.unavailable || bailed) {
      const r: ScenarioResult = {
        name: s.name,
        dataPlane: p.driver.name,
        status: 'skipped',
        durationMs: 0,
        reason: p.unavailable ?? 'not run: --bail after a failure',
        file: p.loaded.file,
        description: s.description,
        tags: [...s.tags],
        features: [...s.features],
        steps: [],
      };
      results[i] = r;
      await emit(opts.reporters, 'onScenarioStart', { name: s.name, dataPlane: p.driver.name });
      await emit(opts.reporters, 'onScenarioEnd', r);
      return;
    }
    await emit(opts.reporters, 'onScenarioStart', { name: s.name, dataPlane: p.driver.name });
    const workDir = scenarioWorkDir(opts.reportDir, s.name, p.driver.name);
    // A reused report dir must not hand this run the last run's logs: plane health would read
    // their old [emerg] lines as this plane's.
    rmSync(workDir, { recursive: true, force: true });
    const r = await runScenario({ loaded: p.loaded, driver: p.driver, runtime: opts.runtime, workDir, logDir: relative(opts.reportDir, workDir), ...(opts.strict ? { strict: true } : {}) });
    results[i] = r;
    if (r.status === 'failed' && opts.bail) bailed = true;
    await emit(opts.reporters, 'onScenarioEnd', r);
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pairs.length) {
      const i = next++;
      const d = pairs[i]?.driver;
      if (d?.fixedEppPort?.() !== undefined && !pairs[i]?.unavailable) {
        // One at a time on a fixed EPP port: chain behind the previous pair of this driver.
        const prev = exclusive.get(d.name) ?? Promise.resolve();
        const mine = prev.then(() => runPair(i));
        exclusive.set(d.name, mine);
        await mine;
      } else await runPair(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? defaultConcurrency()) }, worker));

  const report: RunReport = {
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    runtime: opts.runtime,
    reportDir: opts.reportDir,
    dataPlanes: availability.map(({ d, a }) => ({
      name: d.name,
      description: d.description,
      available: a.ok,
      ...(a.reason ? { reason: a.reason } : {}),
      features: [...d.features],
      ...(d.version?.() ? { version: d.version() as string } : {}),
      ...('file' in d && typeof d.file === 'string' ? { planeFile: d.file } : {}),
    })),
    ...(opts.command ? { command: opts.command } : {}),
    scenarios: results,
    summary: summarize(results),
    coverage: opts.drivers.map((d) => coverageOf(d.name, results)),
    overrides: appliedOverrides(results),
  };
  await emit(opts.reporters, 'onRunEnd', report);
  return report;
}
