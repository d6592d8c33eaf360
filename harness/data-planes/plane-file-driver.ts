// A data plane described by a plane file (plane-file-schema.ts): loaded and checked once
// (every problem at once, templates included, exit 2), then driven like a built-in plane.
//   start form: per scenario, eppkit picks a free port, renders the templates with the route
//     (plane-templates.ts) into the scenario's plane directory, runs the start command, waits
//     for readiness (tcp / http / log line), collects the logs, and stops it (signal or command).
//   url form: the plane already runs, pointed at a fixed EPP port; its `settings` say how it
//     is configured (timeouts adapt, other needs skip with the reason).
// Failures name the plane file, the key and what to do.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkSchema, deepFreeze, formatPath, parseText, readTextFile, sortByLine } from '../../core/config-file.ts';
import { EppkitError, combineErrors, type Problem } from '../../core/errors.ts';
import { freePort } from '../../core/net.ts';
import { isMultiRoute, listenerCount, planeRoutes, type RouteModel } from '../../core/route-model.ts';
import { locateEnvoy } from '../../proxies/envoy/envoy-binary.ts';
import { defaultNginxModulePath } from '../build/nginx-module-build.ts';
import { WARM_UP_HEADER } from '../epp/mock-epp-process.ts';
import { ManagedProcess } from '../launch/managed-process.ts';
import { NO_PROCESS, Wait, WaitExited, WaitTimeout, exitText, type WaitStrategy, type WaitTarget } from '../launch/wait-strategy.ts';
import type { Availability, DataPlaneDriver, DriverContext, Feature, FixedSettings, Runtime, StartedDataPlane } from './data-plane-driver.ts';
import { planeFileSchema, type PlaneFile, type PlaneOverride } from './plane-file-schema.ts';
import { parseTemplate, planeVariables, renderTemplate, type PlaneTools, type TemplateVars } from './plane-templates.ts';
import { readTail } from './start-nginx.ts';
import { CRASH_PATTERNS_BY_KIND, PlaneHealthMonitor, userCrashPatterns, type CrashPattern } from './plane-health.ts';
import { nginxBin } from '../../core/env.ts';

const WARM_UP_MS = 15_000;

export function planeTools(): PlaneTools {
  return {
    nginx: nginxBin(),
    nginxModule: resolve(defaultNginxModulePath()),
    envoy: locateEnvoy().path ?? 'envoy',
  };
}

function commandStrings(c: string | readonly string[] | undefined): string[] {
  return c === undefined ? [] : typeof c === 'string' ? [c] : [...c];
}

/** What the template checks read of a plane file: from the parsed file, or, when it does not fit the schema, what of it has the right shape. */
type TemplateView = { start?: { command: string | readonly string[]; env: Record<string, string>; stop: { command?: string | readonly string[] | undefined }; templates: ReadonlyArray<{ from: string; to: string }> } | undefined; version?: string | readonly string[] | undefined };

function rawTemplateView(data: unknown): TemplateView {
  const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const cmd = (v: unknown): string | string[] | undefined => (typeof v === 'string' ? v : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined);
  const root = obj(data);
  const start = root.start === undefined ? undefined : obj(root.start);
  const env = Object.fromEntries(Object.entries(obj(start?.env)).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const templates = (Array.isArray(start?.templates) ? start.templates : []).map(obj).map((t) => ({ from: typeof t.from === 'string' ? t.from : '', to: typeof t.to === 'string' ? t.to : '' }));
  return { start: start && { command: cmd(start.command) ?? [], env, stop: { command: cmd(obj(start.stop).command) }, templates }, version: cmd(root.version) };
}

/** Reads, validates and checks a plane file (templates parsed, variables known): every problem at once; frozen. */
export function loadPlaneFile(file: string): { plane: PlaneFile; templates: ReadonlyMap<string, string> } {
  const { data, lineOf } = parseText(readTextFile(file), file, 'EPPKIT_PLANE_INVALID');
  const checked = checkSchema(planeFileSchema, data, { lineOf });
  // A schema problem does not hide the template problems: both are reported in one go.
  const plane: TemplateView = checked.success ? checked.data : rawTemplateView(data);
  const problems: Problem[] = checked.success ? [] : [...checked.problems];
  const problem = (path: PropertyKey[], message: string): void => {
    const p: Problem = { path: formatPath(path), message };
    const line = lineOf(path);
    if (line !== undefined) p.line = line;
    problems.push(p);
  };
  // Templates in commands and env values: the same variables as the files.
  const checkInline = (s: string, path: PropertyKey[]): void => {
    for (const p of parseTemplate(s).problems) problem(path, p.message);
  };
  const start = plane.start;
  const templates = new Map<string, string>();
  if (start) {
    const cmd = start.command;
    if (typeof cmd === 'string') checkInline(cmd, ['start', 'command']);
    else cmd.forEach((a, i) => checkInline(a, ['start', 'command', i]));
    for (const [k, v] of Object.entries(start.env)) checkInline(v, ['start', 'env', k]);
    const stopCmd = start.stop.command;
    if (typeof stopCmd === 'string') checkInline(stopCmd, ['start', 'stop', 'command']);
    else stopCmd?.forEach((a, i) => checkInline(a, ['start', 'stop', 'command', i]));
    start.templates.forEach((t, i) => {
      if (!t.from) return;
      const from = resolve(dirname(file), t.from);
      let text: string;
      try {
        text = readFileSync(from, 'utf8');
      } catch (e) {
        problem(['start', 'templates', i, 'from'], `cannot read ${from} (${(e as NodeJS.ErrnoException).code ?? String(e)}): the path is relative to the plane file`);
        return;
      }
      for (const p of parseTemplate(text).problems) problem(['start', 'templates', i, 'from'], `${t.from} line ${p.line}: ${p.message}`);
      if (isAbsolute(t.to) || t.to.split(/[\\/]/).includes('..')) problem(['start', 'templates', i, 'to'], 'must be a path inside {{dir}} (relative, no ..)');
      templates.set(t.from, text);
    });
  }
  for (const v of commandStrings(plane.version)) if (/\{\{/.test(v) && !/\{\{\s*(tools\.|env\.)/.test(v)) problem(['version'], 'a version command may use only {{tools.*}} and {{env.*}}');
  if (problems.length > 0 || !checked.success) throw new EppkitError('EPPKIT_PLANE_INVALID', { source: file }, sortByLine(problems));
  return { plane: deepFreeze(checked.data), templates };
}

function argvOf(c: string | readonly string[], vars: TemplateVars): { command: string; args: string[] } {
  if (typeof c === 'string') return { command: '/bin/sh', args: ['-c', renderTemplate(c, vars)] };
  const [first = '', ...rest] = c.map((a) => renderTemplate(a, vars));
  return { command: first, args: rest };
}

export class PlaneFileDriver implements DataPlaneDriver {
  readonly name: string;
  readonly description: string;
  readonly features: ReadonlySet<Feature>;
  readonly file: string;
  readonly plane: PlaneFile;
  private readonly templates: ReadonlyMap<string, string>;
  /** bbrExtProc: the harness starts a BBR ext_proc mock and passes it as {{bbr.extProc}}. */
  readonly bbrViaExtProc: boolean;
  private versionText: string | undefined;

  constructor(file: string, loaded = loadPlaneFile(file)) {
    this.file = file;
    this.plane = loaded.plane;
    this.templates = loaded.templates;
    this.name = loaded.plane.name;
    this.bbrViaExtProc = loaded.plane.bbrExtProc;
    this.features = new Set(loaded.plane.features);
    this.description = loaded.plane.description ?? `plane file ${file} (${loaded.plane.url ? `running at ${loaded.plane.url}` : 'started per scenario'})`;
  }

  /** First line of the `version` command's output (cached), for reports. */
  version(): string | undefined {
    if (this.versionText !== undefined || !this.plane.version) return this.versionText;
    const vars = planeVariables({ eppAddress: '127.0.0.1:1', pathPrefix: '/', failureMode: 'close', timeoutMs: 1, bodyMode: 'none', fallbackEndpoints: [], responseProcessing: false, maxBodyBytes: 1, allow: [] }, '', { host: '127.0.0.1', port: 1 }, planeTools());
    const { command, args } = argvOf(this.plane.version, vars);
    const r = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
    // The first non-empty line; a leading absolute path shortened to its name (Envoy prints its own).
    const first = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).find(Boolean);
    const out = first?.replace(/^\/\S*\/([^/\s]+)/, '$1').replace(/\s+/g, ' ');
    this.versionText = r.error || r.status !== 0 ? `unknown (version command failed: ${r.error?.message ?? `exit ${r.status}`}; ${this.file} key version)` : (out ?? 'unknown');
    return this.versionText;
  }

  async available(runtime: Runtime): Promise<Availability> {
    if (runtime === 'docker') return { ok: false, reason: `plane files run their start command on this host; use --runtime local (${this.file})` };
    if (this.plane.url) return { ok: true };
    const cmd = this.plane.start?.command ?? '';
    if (typeof cmd !== 'string') {
      const vars = planeVariables({ eppAddress: '127.0.0.1:1', pathPrefix: '/', failureMode: 'close', timeoutMs: 1, bodyMode: 'none', fallbackEndpoints: [], responseProcessing: false, maxBodyBytes: 1, allow: [] }, '', { host: '127.0.0.1', port: 1 }, planeTools());
      const bin = renderTemplate(cmd[0] ?? '', vars);
      const found = bin.includes('/') ? existsSync(bin) : spawnSync('/bin/sh', ['-c', `command -v '${bin.replace(/'/g, '')}'`]).status === 0;
      if (!found) return { ok: false, reason: `${this.file} start.command: ${bin} not found; install it or fix the path` };
    }
    return { ok: true };
  }

  fixedEppPort(): number | undefined {
    return this.plane.url ? this.plane.eppPort : undefined;
  }

  fixedSettings(): FixedSettings {
    const s = this.plane.settings;
    if (!this.plane.url) return {};
    const out: FixedSettings = { source: `${this.file} settings` };
    if (s?.timeoutMs !== undefined) out.timeoutMs = s.timeoutMs;
    if (s?.failureMode) out.failureMode = s.failureMode;
    // A running plane sends the body one way; a plane claiming one body mode runs in it.
    const modes = (['buffered', 'streamed', 'none'] as const).filter((m) => this.features.has(`body-${m}`));
    const bm = s?.bodyMode ?? (modes.length === 1 ? modes[0] : undefined);
    if (bm) out.bodyMode = bm;
    return out;
  }

  unsupportedRoute(route: RouteModel): string | undefined {
    if (!this.plane.url) return undefined;
    const where = `${this.file} runs at ${this.plane.url}`;
    if (route.fallbackEndpoints.length > 0) return `needs a fail-open pool of eppkit's backends; ${where} with its own${this.plane.settings?.pool ? ` (settings.pool ${this.plane.settings.pool.join(',')})` : ''}`;
    if (route.subsetHint) return `needs a subset hint per scenario; ${where}, which cannot be told one`;
    if (route.allow.length > 0) return `needs an allowlist of eppkit's backends; ${where}, which cannot be told one`;
    return undefined;
  }

  /** The plane file's expected differences for one scenario (every report shows their why). */
  overridesFor(scenario: string): PlaneOverride[] {
    const o = this.plane.overrides[scenario];
    return o === undefined ? [] : Array.isArray(o) ? o : [o];
  }

  async start(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane> {
    if (this.plane.url) return this.startUrl(ctx);
    return this.startProcess(route, ctx);
  }

  private async startUrl(ctx: DriverContext): Promise<StartedDataPlane> {
    const url = (this.plane.url ?? '').replace(/\/$/, '');
    const logFile = this.plane.logFile;
    const from = logFile && existsSync(logFile) ? statSync(logFile).size : 0;
    const notes: string[] = [];
    const logs = (): string => {
      const own = logFile && existsSync(logFile) ? readFileSync(logFile).subarray(from).toString('utf8') : '';
      return [...notes, own].filter(Boolean).join('\n');
    };
    // Plane health: its log scanned with its kind's patterns and its own crashPatterns.
    const monitor = new PlaneHealthMonitor(this.name);
    if (logFile) monitor.withLogFile(`${this.name} log`, logFile, this.crashPatterns(this.plane.kind), from);
    await this.warmUp(NO_PROCESS, url, notes, ctx.signal);
    // Nothing to start or stop: the user owns this process.
    const stop = (): Promise<void> => monitor.stopping(async () => {});
    return { name: this.name, url, logs, pids: () => monitor.pids(), health: () => monitor.health(), stop, [Symbol.asyncDispose]: stop };
  }

  /**
   * Starts the plane on ports eppkit picked. A picked port is only free when picked: another
   * process (a parallel scenario, another tool) can bind it before the plane does. The plane
   * then fails with "Address already in use"; that is eppkit's race, not the plane's fault, so
   * it is started again on new ports (twice at most), and the report's log says so.
   */
  private async startProcess(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane> {
    const retried: string[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startProcessOnce(route, ctx, retried);
      } catch (e) {
        const taken = e instanceof EppkitError && /address already in use|EADDRINUSE/i.test(e.message);
        if (!taken || attempt >= 3 || ctx.signal?.aborted) throw e;
        retried.push(`[eppkit] attempt ${attempt}: a port eppkit picked was taken before the plane bound it (address already in use); starting again on new ports`);
      }
    }
  }

  private async startProcessOnce(route: RouteModel, ctx: DriverContext, retried: readonly string[]): Promise<StartedDataPlane> {
    const start = this.plane.start;
    if (!start) throw new Error('unreachable: a plane file has start or url');
    const dir = resolve(ctx.workDir, 'plane');
    // Empty on every attempt: a failed attempt's logs (its bind error) are not this plane's health.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // multi-pool: a port per listener, and one per (route, pool) entry ({{bind}}) for two-tier planes.
    const listeners = await Promise.all(Array.from({ length: listenerCount(route) }, async () => ({ host: ctx.host, port: await freePort(ctx.host) })));
    const entries = isMultiRoute(route) ? await Promise.all(planeRoutes(route).map(async () => ({ host: '127.0.0.1', port: await freePort('127.0.0.1') }))) : undefined;
    const runDir = mkdtempSync(join(tmpdir(), 'epk-'));
    const vars = planeVariables(route, dir, { listeners, ...(entries ? { entries } : {}) }, planeTools(), runDir);
    for (const t of start.templates) {
      const to = join(dir, t.to);
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, renderTemplate(this.templates.get(t.from) ?? '', vars));
    }
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(start.env)) env[k] = renderTemplate(v, vars);
    const { command, args } = argvOf(start.command, vars);
    const proc = new ManagedProcess({ what: `${this.name} (${this.file})`, command, args, cwd: dir, env, logFile: join(dir, 'plane.log') });
    const logFiles = start.logs.map((l) => (typeof l === 'string' ? l : l.file)).map((f) => (isAbsolute(f) ? f : join(dir, f)));
    const notes: string[] = [...retried, `[eppkit] ${this.file}: ${command} ${args.join(' ')} (in ${dir}, listen ${vars.listen}, EPP ${route.eppAddress})`];
    const logs = (): string =>
      [notes.join('\n'), `--- ${this.name} stdout+stderr ---\n${proc.tail(64 * 1024)}`, ...logFiles.map((f) => `--- ${f} ---\n${readTail(f, 64 * 1024)}`)].join('\n');
    // Plane health: the process it started (exit code or signal), its stdout+stderr and each log
    // file, with the patterns of the log's kind (else the plane's) and the plane's crashPatterns.
    const monitor = new PlaneHealthMonitor(this.name)
      .withProcess(this.name, proc)
      .withLogFile(`${this.name} stdout+stderr`, join(dir, 'plane.log'), this.crashPatterns(this.plane.kind), 0);
    start.logs.forEach((l, i) => {
      const kind = typeof l === 'string' ? this.plane.kind : (l.kind ?? this.plane.kind);
      const f = logFiles[i] as string;
      monitor.withLogFile(f, f, this.crashPatterns(kind));
    });
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopped ??= monitor.stopping(() => this.stopProcess(proc, vars)).finally(() => rmSync(runDir, { recursive: true, force: true }));
      return stopped;
    };
    const url = `http://${vars.listen}`;
    const listenerUrls = listeners.map((l) => `http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`);
    try {
      for (const l of listeners) await this.waitReady(proc, url, l, dir, ctx.signal);
      await this.warmUp(proc, url, notes, ctx.signal);
    } catch (e) {
      await stop();
      throw e;
    }
    return { name: this.name, url, ...(listeners.length > 1 ? { listenerUrls } : {}), logs, pids: () => monitor.pids(), health: () => monitor.health(), stop, [Symbol.asyncDispose]: stop };
  }

  /** A kind's default crash patterns plus the plane file's own. */
  private crashPatterns(kind: keyof typeof CRASH_PATTERNS_BY_KIND): CrashPattern[] {
    return [...userCrashPatterns(this.plane.crashPatterns), ...CRASH_PATTERNS_BY_KIND[kind]];
  }

  private async stopProcess(proc: ManagedProcess, vars: TemplateVars): Promise<void> {
    const s = this.plane.start?.stop;
    if (!s) return proc.stop();
    if (s.command) {
      const { command, args } = argvOf(s.command, vars);
      await new Promise<void>((res) => {
        const c = spawn(command, args, { stdio: 'ignore' });
        const t = setTimeout(() => c.kill('SIGKILL'), s.graceMs);
        c.once('exit', () => (clearTimeout(t), res()));
        c.once('error', () => (clearTimeout(t), res()));
      });
      await Promise.race([proc.exited, sleep(s.graceMs)]);
      return proc.stop(1000);
    }
    if (s.signal === 'SIGTERM') return proc.stop(s.graceMs);
    proc.signal(s.signal);
    await Promise.race([proc.exited, sleep(s.graceMs)]);
    await proc.kill();
  }

  private async waitReady(proc: ManagedProcess, url: string, listen: { host: string; port: number }, dir: string, signal?: AbortSignal): Promise<void> {
    const start = this.plane.start;
    if (!start) return;
    const r = start.ready;
    const wait: WaitStrategy<void> =
      'tcp' in r
        ? Wait.forTcp(listen.host, listen.port)
        : 'http' in r
          ? Wait.forHttp(`${url}${r.http.path}`, { status: r.http.status })
          : Wait.forText(new RegExp(r.log.matches, 'm'), r.log.file === 'stdout' ? undefined : isAbsolute(r.log.file) ? r.log.file : join(dir, r.log.file));
    try {
      await wait.waitUntilReady(proc, { timeoutMs: start.readyTimeoutMs, ...(signal ? { signal } : {}) });
    } catch (e) {
      if (e instanceof WaitExited) {
        throw new EppkitError('EPPKIT_START_FAILED', {
          what: `plane ${this.name}`,
          reason: `${this.file} start.command exited (${exitText(e.status)}) before it was ready: run it by hand in ${dir} to see why (the rendered config files are there); output:\n${proc.tail(1500)}`,
        });
      }
      throw new EppkitError('EPPKIT_START_FAILED', {
        what: `plane ${this.name}`,
        reason: `${this.file} start.ready: not ready within ${start.readyTimeoutMs} ms (waited for ${wait.description}); make the plane listen on {{listen}} (rendered ${listen.host}:${listen.port}) or fix start.ready, or raise start.readyTimeoutMs; output:\n${proc.tail(1500)}`,
      });
    }
  }

  /**
   * Waits until a request through the plane reaches the mock EPP and back, using only what the
   * plane claims: an immediate response (204) when it relays them, else a request the EPP
   * routes (x-eppkit-endpoint) to a throwaway sink of this driver. Every warm-up request carries
   * WARM_UP_HEADER, so the runner's journal checks never count it. A started plane connects to
   * a mock that already runs: nothing to wait for unless warmUp says so.
   */
  private async warmUp(target: WaitTarget, url: string, notes: string[], signal?: AbortSignal): Promise<void> {
    let mode = this.plane.warmUp;
    if (mode === 'auto') mode = this.plane.url ? (this.features.has('immediate-response') ? 'immediate' : 'routed') : 'none';
    if (mode === 'none') {
      notes.push('[eppkit] warm-up: none (the plane starts after the mock EPP)');
      return;
    }
    let sink: Server | undefined;
    let sinkAddr = '';
    if (mode === 'routed') {
      sink = createServer((_req, res) => res.writeHead(204, { 'x-eppkit-warm-up-sink': '1' }).end());
      await new Promise<void>((res) => sink?.listen(0, '127.0.0.1', res));
      const a = sink.address();
      sinkAddr = typeof a === 'object' && a ? `127.0.0.1:${a.port}` : '';
    }
    const waitingFor =
      mode === 'immediate'
        ? `an immediate response 204 from the mock EPP through the plane (GET /eppkit-warm-up, x-eppkit-immediate: 204)`
        : `a request routed by the mock EPP to eppkit's warm-up sink ${sinkAddr} (GET /eppkit-warm-up, x-eppkit-endpoint)`;
    notes.push(`[eppkit] warm-up: waiting for ${waitingFor}, at most ${WARM_UP_MS / 1000} s`);
    const headers: Record<string, string> = { [WARM_UP_HEADER]: '1', ...(mode === 'immediate' ? { 'x-eppkit-immediate': '204' } : { 'x-eppkit-endpoint': sinkAddr }) };
    let last = 'no answer';
    const answered = Wait.until(
      waitingFor,
      async () => {
        const r = await fetch(`${url}/eppkit-warm-up`, { headers, signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 204 && (mode === 'immediate' || r.headers.get('x-eppkit-warm-up-sink') === '1')) return { ready: true, value: undefined };
        return { ready: false, last: `status ${r.status}` };
      },
      200,
    ).withTimeout(WARM_UP_MS);
    try {
      await answered.waitUntilReady(target, signal ? { signal } : {});
      notes.push('[eppkit] warm-up: done');
      return;
    } catch (e) {
      if (e instanceof WaitExited) last = `its process exited (${exitText(e.status)})`;
      else if (e instanceof WaitTimeout && e.last) last = e.last;
    } finally {
      sink?.close();
    }
    throw new EppkitError('EPPKIT_START_FAILED', {
      what: `plane ${this.name}`,
      reason: `${this.file}: warm-up never got ${waitingFor} within ${WARM_UP_MS / 1000} s (last: ${last}); check that the plane uses the EPP at 127.0.0.1:${this.plane.eppPort ?? '{{epp.port}}'}${this.plane.url ? ' (eppPort)' : ''}, or set warmUp (routed | immediate | none) to what it supports`,
    });
  }
}

/** Loads every --plane file; all problems of all files at once. */
export function loadPlaneDrivers(files: readonly string[]): PlaneFileDriver[] {
  const drivers: PlaneFileDriver[] = [];
  const errors: EppkitError[] = [];
  for (const f of files) {
    try {
      drivers.push(new PlaneFileDriver(f));
    } catch (e) {
      if (e instanceof EppkitError) errors.push(e);
      else throw e;
    }
  }
  if (errors.length > 0) throw combineErrors(errors);
  const seen = new Map<string, string>();
  for (const d of drivers) {
    const prev = seen.get(d.name);
    if (prev) throw new EppkitError('EPPKIT_PLANE_INVALID', { source: d.file }, [{ path: 'name', message: `"${d.name}" is also the name of ${prev}` }]);
    seen.set(d.name, d.file);
  }
  return drivers;
}

