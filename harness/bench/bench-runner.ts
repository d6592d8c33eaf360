// Runs a bench end to end: for each target a fresh echo backend and a fresh mock EPP (child
// processes, so neither shares the load client's event loop, and neither carries the previous
// target's state), the data plane through its driver, one smoke request, then the load
// (load-client.ts). `direct` (straight to the backend) runs first as the baseline of the EPP
// hop cost. Unavailable drivers are skipped with their reason; a data plane that fails to
// start is reported as failed and the bench goes on.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BBR_DEFAULTS, routeWithDefaults } from '../../core/route-model.ts';
import type { MockEppProcess } from '../epp/mock-epp-process.ts';
import { chatBody } from '../runner/request-body.ts';
import { EppkitError } from '../../core/errors.ts';
import type { DataPlaneDriver, StartedDataPlane } from '../data-planes/data-plane-driver.ts';
import { DRIVERS, findDriver } from '../data-planes/registry.ts';
import type { Launched } from '../launch/launch.ts';
import { TestBed } from '../launch/test-bed.ts';
import { benchBackendLaunch, benchEppLaunch, planHelpers, startOnBed } from './bench-helpers.ts';
import { CpuHogs } from './cpu-hog.ts';
import { checkHeadroom, headroomNotes, wrkAvailable, type HeadroomCheck } from './generator-headroom.ts';
import type { BenchOptions } from './bench-options.ts';
import { AUTOCANNON_NOTES, CLIENT_SATURATED, REPORT_SCHEMA, type BenchReport, type LoadClientFacts, type TargetResult } from './bench-report.ts';
import { AUTOCANNON_VERSION, runAutocannon } from './autocannon-client.ts';
import { runLoad, split } from './load-client.ts';
import { nativeHttpClient, runNativeLoad } from './native-load-client.ts';
import { BENCH_TOOLS } from '../build/bench-tools-build.ts';
import type { LoadSpec } from './load-worker.ts';
import { currentLoadAvg, dataPlaneVersion, machineFacts } from './machine-facts.ts';
import { evaluateThresholds, type ThresholdSubject } from './thresholds.ts';
import { processTree } from '../../core/proc-sampler.ts';
import { healthReason } from '../data-planes/plane-health.ts';
import { planeFootprint } from '../runner/run-scenario.ts';
import { hopCost, judgeTarget } from './bench-verdict.ts';
import { ProcessCpuSampler } from './process-cpu.ts';
import { settledFootprint } from './settled-footprint.ts';

/** Drivers `all` stands for: every registered one except `external`, which needs the user's own setup. */
export function resolveDataPlanes(names: readonly string[], registry: readonly DataPlaneDriver[] = DRIVERS): DataPlaneDriver[] {
  const out: DataPlaneDriver[] = [];
  for (const n of names) {
    const known = registry.find((d) => d.name === n);
    const list = n === 'all' ? registry.filter((d) => d.name !== 'external') : [known ?? findDriver(n)];
    for (const d of list) if (!out.includes(d)) out.push(d);
  }
  return out;
}

async function smoke(url: string, headers: Record<string, string>, body: Buffer | undefined): Promise<string | undefined> {
  try {
    const res = await fetch(url, { method: body ? 'POST' : 'GET', headers, body, signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status >= 200 && res.status < 300 ? undefined : `smoke request answered ${res.status}`;
  } catch (e) {
    return `smoke request failed: ${(e as Error).message}`;
  }
}

export interface BenchRunOptions {
  /** The command line shown in the report. */
  command: string;
  /** Progress lines (target started, finished); default: none. */
  progress?: (line: string) => void;
  /** Drivers to choose from instead of the registry (embedding, drivers not registered yet). */
  drivers?: readonly DataPlaneDriver[];
}

export async function runBench(o: BenchOptions, run: BenchRunOptions): Promise<BenchReport> {
  if (o.mode === 'mock-epp') throw new EppkitError('EPPKIT_USAGE', { reason: 'mock-epp mode runs through runMockEppBench' });
  const progress = run.progress ?? (() => {});
  const startedAt = new Date().toISOString();
  const machine = machineFacts();
  const reportDir = resolve(o.reportDir);
  const logsDir = join(reportDir, 'logs');
  rmSync(logsDir, { recursive: true, force: true });
  mkdirSync(logsDir, { recursive: true });

  // Compiled backend and EPP when built (auto), so eppkit's own processes cost less than the plane.
  const helpers = planHelpers({ backend: o.backend, epp: o.epp }, o.runtime);
  // eppkit's own client compiled when built (auto): a Node worker costs more CPU than some planes.
  const httpBin = o.client === 'eppkit' ? nativeHttpClient(o.httpClient) : undefined;
  const headroomWanted = o.headroom && o.direct && !o.url && o.client === 'eppkit';
  const wrk = headroomWanted ? wrkAvailable() : undefined;
  let headroom: HeadroomCheck | undefined;
  const headroomProblems: string[] = [];
  if (wrk && !wrk.ok) headroomProblems.push(`generator headroom not checked: ${wrk.reason}`);

  // --url measures a running plane: no data plane of eppkit's is started.
  const drivers = o.url ? [] : resolveDataPlanes(o.dataPlanes, run.drivers);
  const skipped: BenchReport['skipped'] = [];
  const usable: Array<{ driver: DataPlaneDriver; version: string }> = [];
  for (const d of drivers) {
    const a = await d.available(o.runtime);
    if (!a.ok) skipped.push({ target: d.name, reason: a.reason ?? 'not available' });
    else usable.push({ driver: d, version: await dataPlaneVersion(d) });
  }

  // --bbr: the same JSON chat body (model last, the scanner's worst case) for every target.
  const BBR_MODEL = 'eppkit-bench-model';
  const body = o.bodyBytes <= 0 ? undefined : o.bbr ? chatBody(o.bodyBytes, BBR_MODEL, true) : Buffer.alloc(o.bodyBytes, 0x78);
  const several = o.eppDelayMs.length > 1;
  const targets: Array<{ label: string; driver?: DataPlaneDriver; version?: string; delay: number; url?: string; bbr?: boolean }> = [];
  if (o.url) {
    if (o.directUrl) targets.push({ label: 'direct', delay: 0, url: o.directUrl });
    targets.push({ label: 'url', delay: 0, url: o.url });
  } else if (o.direct) targets.push({ label: 'direct', delay: 0 });
  for (const delay of o.eppDelayMs) {
    for (const u of usable) {
      const label = several ? `${u.driver.name}@${delay}ms` : u.driver.name;
      targets.push({ label, driver: u.driver, version: u.version, delay });
      if (o.bbr && u.driver.features.has('bbr')) targets.push({ label: `${label}+bbr`, driver: u.driver, version: u.version, delay, bbr: true });
      else if (o.bbr) skipped.push({ target: `${label}+bbr`, reason: `${u.driver.name} does not support body-based routing (feature bbr)` });
    }
  }

  // Interrupted (Ctrl-C, SIGTERM): stop this target's processes before exiting, so no mock,
  // backend or data plane outlives the bench. Load workers exit when their IPC channel closes.
  let bed: TestBed | undefined;
  const hogs = CpuHogs.start(o.cpuHog);
  // Paused until a target's load window: they load the serving, not the drivers' start-up.
  hogs.signal('SIGSTOP');
  const hogShares: string[] = [];
  if (o.cpuHog > 0) progress(`${o.cpuHog} CPU hog process(es) started beside the bench (pids ${hogs.pids.join(', ')}), running during each load window`);
  const onSignal = (sig: NodeJS.Signals): void => {
    progress(`${sig}: stopping the processes of the current target`);
    void Promise.allSettled([bed?.[Symbol.asyncDispose](), hogs.stop()]).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: TargetResult[] = [];
  try {
    for (const t of targets) {
      const dir = join(logsDir, t.label.replace(/[^A-Za-z0-9@.-]/g, '_'));
      mkdirSync(dir, { recursive: true });
      const result: TargetResult = { target: t.label, dataPlane: t.driver?.name ?? (t.url && t.label !== 'direct' ? t.url : null), eppDelayMs: t.delay };
      if (t.version) result.version = t.version;
      results.push(result);
      const headers: Record<string, string> = {};
      if (t.driver && t.delay > 0) headers['x-eppkit-delay-ms'] = String(t.delay);
      if (body) headers['content-type'] = o.bbr ? 'application/json' : 'application/octet-stream';

      let backend: Launched | undefined;
      let epp: Launched | undefined;
      let bbrServer: MockEppProcess | undefined;
      let dp: StartedDataPlane | undefined;
      // This target's backend, EPP (mock or compiled), BBR mock and data plane, stopped together.
      const targetBed = new TestBed({ workDir: dir, runtime: o.runtime });
      bed = targetBed;
      try {
        progress(`${t.label}: starting`);
        const b = t.url ? undefined : await startOnBed(targetBed, benchBackendLaunch(helpers, dir));
        backend = b?.proc;
        let url = t.url ?? `http://${b?.address}${o.path}`;
        if (t.driver && b) {
          const port = t.driver.fixedEppPort?.() ?? 0;
          const e = await startOnBed(targetBed, benchEppLaunch(helpers, b.address, port, dir));
          epp = e.proc;
          const route = routeWithDefaults({
            eppAddress: e.address,
            bodyMode: o.bodyMode,
            // The message timeout must not cut the delay being measured.
            timeoutMs: Math.max(200, t.delay * 2 + 500),
            ...(t.bbr ? { bbr: { ...BBR_DEFAULTS } } : {}),
          });
          if (route.bbr && t.driver.bbrViaExtProc) {
            // Envoy chains a BBR ext_proc server: the mock in the BBR role (its CPU is reported apart).
            bbrServer = await targetBed.withBbrMock(route.bbr);
            route.bbr = { ...route.bbr, extProcAddress: bbrServer.address };
          }
          const unsupported = t.driver.unsupportedRoute?.(route);
          if (unsupported) {
            skipped.push({ target: t.label, reason: unsupported });
            results.pop();
            continue;
          }
          dp = await targetBed.withDataPlane(t.driver, route);
          url = `${dp.url}${o.path}`;
        }
        const bad = await smoke(url, headers, body);
        let smokeHealth = dp?.health();
        if (bad && dp && smokeHealth?.ok) {
          // A crashing plane fails the smoke request before its exit has been seen (with a fast
          // EPP the two are microseconds apart): let plane health catch up, up to 2 s, so the
          // report names the crash rather than only "fetch failed".
          const until = performance.now() + 2000;
          while (smokeHealth?.ok && performance.now() < until) {
            await new Promise((r) => setTimeout(r, 50));
            smokeHealth = dp.health();
          }
        }
        if (bad || (smokeHealth && !smokeHealth.ok)) {
          result.failed = [smokeHealth && !smokeHealth.ok ? healthReason(smokeHealth) : undefined, bad].filter(Boolean).join('; ');
          writeFileSync(join(dir, 'data-plane.log'), dp?.logs() ?? '');
          progress(`${t.label}: FAILED: ${result.failed}`);
          continue;
        }
        const spec: LoadSpec = {
          url,
          method: body ? 'POST' : 'GET',
          headers,
          bodyBytes: o.bodyBytes,
          ...(o.bbr ? { bodyModel: BBR_MODEL } : {}),
          executor: o.executor,
          connections: shareOf(o.connections, o.shard),
          warmupMs: o.warmup,
          durationMs: o.duration,
          timeoutMs: o.timeout,
        };
        if (o.rate !== undefined) spec.rate = o.shard ? o.rate / o.shard.count : o.rate;
        progress(`${t.label}: measuring for ${o.duration / 1000} s`);
        // Every process of the target, sampled from /proc at the start and the end of the window.
        const plane = dp;
        const sampler = new ProcessCpuSampler([
          ...(plane ? [{ role: 'data plane' as const, pids: () => plane.pids() }] : []),
          // Host pids: a helper in a container is sampled through its init as this host sees it.
          ...(epp?.hostPid ? [{ role: 'EPP' as const, pids: () => processTree(epp!.hostPid!) }] : []),
          ...(backend?.hostPid ? [{ role: 'backend' as const, pids: () => processTree(backend!.hostPid!) }] : []),
          // --bbr on a plane that chains a BBR ext_proc server: the mock in the BBR role, an EPP-like helper.
          ...(bbrServer?.hostPid ? [{ role: 'EPP' as const, pids: () => processTree(bbrServer!.hostPid!) }] : []),
        ]);
        const footprintBefore = plane ? planeFootprint(plane) : undefined;
        const windowTimers = [setTimeout(() => sampler.start(), o.warmup), setTimeout(() => sampler.stop(), o.warmup + o.duration)];
        hogs.signal('SIGCONT');
        const hogCpu0 = hogs.cpuUs();
        const hogT0 = performance.now();
        try {
          result.load = o.client === 'autocannon' ? await runAutocannon(spec, o.workers) : httpBin ? await runNativeLoad(httpBin, spec) : await runLoad(spec, o.workers);
        } finally {
          for (const w of windowTimers) clearTimeout(w);
          sampler.stopIfRunning();
          if (o.cpuHog > 0) {
            hogShares.push(`${t.label} ${Math.round(((hogs.cpuUs() - hogCpu0) / 1000 / Math.max(1, performance.now() - hogT0)) * 100) / 100}`);
            hogs.signal('SIGSTOP');
          }
        }
        const l = result.load;
        const self = (l.workerPids ?? []).map((pid, i) => ({ role: 'load worker' as const, name: httpBin ? BENCH_TOOLS.httpLoad : 'node load-worker', pid, coreShare: l.workerCpu[i] ?? 0, elapsedMs: l.elapsedMs, rssBytes: l.workerRssBytes?.[i] ?? 0 }));
        result.cpu = sampler.attribute(l.requests, self);
        // Once the plane has closed what the client left: sockets still closing are no leak.
        const footprintAfter = plane ? await settledFootprint(() => planeFootprint(plane)) : undefined;
        if (footprintBefore && footprintAfter) result.footprint = { before: footprintBefore, after: footprintAfter };
        const health = plane?.health();
        if (health && !health.ok) result.planeProblems = health.problems;
        const verdict = judgeTarget({ load: l, maxErrorRatio: o.maxErrorRatio, ...(health ? { health } : {}), ...(result.footprint ? { footprint: result.footprint } : {}), connections: o.connections, strict: o.strict });
        if (verdict.failed) result.failed = verdict.failed;
        if (verdict.warnings.length) result.warnings = verdict.warnings;
        progress(`${t.label}: ${result.load.rps} req/s, p50 ${result.load.latencyMs.p50} ms, p99 ${result.load.latencyMs.p99} ms${result.cpu?.dataPlaneUsPerRequest != null ? `, data plane ${result.cpu.dataPlaneUsPerRequest} µs CPU/request` : ''}${result.failed ? `; FAILED: ${result.failed}` : ''}`);
        if (!t.driver && wrk?.ok) {
          progress(`${t.label}: generator-headroom check with wrk`);
          const h = await checkHeadroom({ url, headers, connections: o.connections, threads: o.workers, durationMs: Math.min(o.duration, 5000), clientRps: result.load.rps });
          if ('failed' in h) headroomProblems.push(`generator headroom not checked: ${h.failed}`);
          else headroom = h;
        }
      } catch (e) {
        result.failed = e instanceof EppkitError ? e.format() : ((e as Error)?.message ?? String(e));
        progress(`${t.label}: failed: ${result.failed.split('\n')[0]}`);
      } finally {
        if (dp) {
          writeFileSync(join(dir, 'data-plane.log'), dp.logs());
          await dp.stop().catch(() => {});
          // After stop the logs are complete: a crash logged after the window still fails the target.
          const late = dp.health();
          if (!late.ok && !result.planeProblems) {
            result.planeProblems = late.problems;
            const why = healthReason(late) ?? 'data plane unhealthy';
            result.failed = result.failed ? `${why}; ${result.failed}` : why;
            progress(`${t.label}: FAILED: ${why}`);
          }
        }
        await targetBed[Symbol.asyncDispose]();
        bed = undefined;
      }
    }
  } finally {
    // Load average before the hogs go, so the report shows what the targets ran under.
    machine.loadAvg1End = currentLoadAvg();
    await hogs.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const directResult = results.find((r) => r.target === 'direct');
  for (const r of results) {
    if (!r.load) continue;
    if (r.dataPlane) {
      const hop = hopCost(r, directResult);
      r.hopMs = hop.hopMs;
      if (hop.hopNote) r.hopNote = hop.hopNote;
    }
    if (o.mode === 'nonblocking' && r.eppDelayMs > 0) {
      // Only 2xx count: a fail-close 500 answered at once is no proof of waiting without blocking.
      const okRps = r.load.requests === 0 ? 0 : (r.load.rps * (r.load.requests - r.load.non2xx)) / r.load.requests;
      r.boundRps = Math.round((o.connections * 1000) / r.eppDelayMs);
      r.boundPct = Math.round((okRps / r.boundRps) * 1000) / 10;
      r.blockingRps = Math.round((1000 / r.eppDelayMs) * 10) / 10;
      r.blockingX = Math.round((okRps / r.blockingRps) * 10) / 10;
    }
  }

  const subjects: ThresholdSubject[] = results.flatMap((r) => {
    if (!r.load) return [];
    const s: ThresholdSubject = { target: r.target, latencyMs: r.load.latencyMs, rps: r.load.rps, requests: r.load.requests, errors: r.load.errors, non2xx: r.load.non2xx };
    if (typeof r.hopMs === 'number') s.hopMs = r.hopMs;
    if (r.boundPct !== undefined) s.boundPct = r.boundPct;
    if (r.blockingX !== undefined) s.blockingX = r.blockingX;
    return [s];
  });
  const thresholds = evaluateThresholds(o.thresholds, subjects);

  const notes: string[] = [];
  if (o.cpuHog > 0) {
    notes.push(
      `${o.cpuHog} CPU hog process(es) (busy loops at the bench's own priority) ran during every target's load window (warm-up and measured), paused while its processes started, stopped by PID at the end; cores they used per window: ${hogShares.join(', ') || 'none'}; 1-min load average ${machine.loadAvg1} at start, ${machine.loadAvg1End} at end.`,
    );
  }
  notes.push(`helpers: ${helpers.backend.description}; ${helpers.epp.description}.`, ...headroomProblems);
  if (headroom) {
    const planes = results.filter((r) => r.dataPlane && r.load).map((r) => ({ target: r.target, rps: r.load!.rps }));
    notes.push(...headroomNotes(headroom, planes, o.executor === 'constant-vus'));
  }
  const clientWorkers = httpBin ? 1 : Math.max(1, Math.min(o.workers, o.connections));
  if (o.client === 'autocannon') {
    notes.push(AUTOCANNON_NOTES.resolution);
    if (o.rate !== undefined) notes.push(AUTOCANNON_NOTES.rate);
  }
  for (const r of results) {
    // autocannon reports one figure for its whole process (every worker thread).
    const hot = o.client === 'autocannon'
      ? (r.load?.workerCpu[0] ?? 0) >= CLIENT_SATURATED * clientWorkers ? 1 : 0
      : (r.load?.workerCpu.filter((c) => c >= CLIENT_SATURATED).length ?? 0);
    if (hot > 0) notes.push(`${r.target}: ${hot} load worker(s) used ≥${CLIENT_SATURATED * 100}% of a core, so the client may be the limit; ${httpBin ? 'the compiled client is one thread: run shards (--shard i/n, bench merge) or --http-client node --workers N' : 'raise --workers'} (the machine has ${machine.cores} cores).`);
  }
  if (o.bbr) {
    notes.push(
      `bbr: each plane ran without and with body-based routing (<plane>+bbr) on the same ${o.bodyBytes} B OpenAI chat body, model last; the data plane's CPU µs/request (per-process accounting below) and p50 of the +bbr row minus the row above it are BBR's cost.`,
    );
    if (results.some((r) => r.target.startsWith('envoy') && r.target.endsWith('+bbr'))) {
      notes.push('bbr on envoy: BBR is a second ext_proc server (eppkit\'s mock in the BBR role, Node); its own CPU is not in the plane\'s figure, only what Envoy spends driving the second filter.');
    }
  }
  if (results.length === 0) notes.push('nothing was measured: every data plane asked for was skipped (reasons above) and direct was off.');
  if (machine.cores <= 4) {
    notes.push(`this machine has ${machine.cores} cores shared by the load client, the data plane, the EPP and the backend: absolute numbers are low and noisy; compare targets within one run.`);
  }

  const loadClient: LoadClientFacts = {
    client: o.client,
    kind:
      o.client === 'autocannon'
        ? `autocannon ${AUTOCANNON_VERSION} (${clientWorkers > 1 ? 'worker threads' : 'in the bench process'}, latency in whole ms)`
        : httpBin
          ? `compiled HTTP load client (${BENCH_TOOLS.httpLoad}: one thread, HTTP/1.1 keep-alive, HDR histograms in µs)`
          : 'eppkit load workers (Node child processes, node:http keep-alive, HDR histograms in µs)',
    workers: clientWorkers,
    executor: o.executor,
    connections: o.connections,
    durationMs: o.duration,
    warmupMs: o.warmup,
    method: body ? 'POST' : 'GET',
    path: o.url ? new URL(o.url).pathname : o.path,
    bodyBytes: o.bodyBytes,
    bodyMode: o.bodyMode,
    timeoutMs: o.timeout,
  };
  if (o.rate !== undefined) loadClient.rate = o.rate;
  if (o.shard) {
    notes.push(`shard ${o.shard.index}/${o.shard.count}: this process sent ${shareOf(o.connections, o.shard)} of ${o.connections} connections${o.rate !== undefined ? ` and ${Math.round((o.rate / o.shard.count) * 10) / 10} of ${o.rate} req/s` : ''}; join the shards with \`eppkit bench merge\`.`);
  }

  return {
    schema: REPORT_SCHEMA,
    mode: o.mode,
    ...(o.shard ? { shard: { index: o.shard.index, count: o.shard.count, connections: shareOf(o.connections, o.shard) } } : {}),
    command: run.command,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    loadClient,
    helpers: { backend: helpers.backend.description, epp: helpers.epp.description },
    ...(headroom ? { headroom } : {}),
    results,
    skipped,
    thresholds,
    notes,
    ok: results.length > 0 && results.every((r) => !r.failed) && thresholds.every((t) => t.ok),
  };
}

/** This shard's connections: the whole split as evenly as possible, shard i taking share i. */
export function shareOf(connections: number, shard: { index: number; count: number } | undefined): number {
  return shard ? (split(connections, shard.count)[shard.index] ?? 0) : connections;
}
