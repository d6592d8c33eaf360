// One call for drivers to run their data plane (or a mock EPP, or a backend) either as a local
// child process or, with `--runtime docker`, as the same command in a container. The container
// runs on the host network with the driver's work dir bind-mounted at the same path, so the
// config a driver renders (absolute paths, 127.0.0.x addresses, port 0) works unchanged in both.
//
//   const dp = await startProcessOrContainer(ctx, {
//     what: 'node-proxy',
//     ...eppkitInvocation(['node-proxy', '--listen', '127.0.0.1:0', ...]),
//     readyPattern: /listening on (http:\/\/\S+)/,
//     logFile: join(ctx.workDir, 'node-proxy.log'),
//   });
//   const url = dp.readyMatch?.[1];
import { EppkitError } from '../../core/errors.ts';
import type { Availability, DriverContext, Runtime } from '../data-planes/data-plane-driver.ts';
import type { ExitStatus } from '../data-planes/plane-health.ts';
import { ManagedProcess, eppkitCommand } from '../processes/managed-process.ts';
import { dockerAvailable, inspectImage } from './docker-cli.ts';
import { EppkitContainer, waitForTcp, type StartedEppkitContainer } from './eppkit-container.ts';

/** Images of `eppkit build images` and where things live inside them. */
export const IMAGES_BY_ROLE = {
  /** eppkit itself: `eppkit mock-epp|node-proxy|backend ...` */
  eppkit: 'eppkit/node',
  nginxEpp: 'eppkit/nginx-epp',
  nginxNjs: 'eppkit/nginx-njs',
  envoy: 'eppkit/envoy',
} as const;

export const CONTAINER_PATHS = {
  /** `load_module` path of the Rust EPP module in eppkit/nginx-epp. */
  nginxEppModule: '/usr/lib/nginx/modules/ngx_http_rust_epp_module.so',
  /** Debian's NJS module (same path on the host and in eppkit/nginx-njs, eppkit/nginx-epp). */
  nginxNjsModule: '/usr/lib/nginx/modules/ngx_http_js_module.so',
  nginx: '/usr/sbin/nginx',
  envoy: '/usr/local/bin/envoy',
  eppkit: 'eppkit',
} as const;

export interface ProcessOrContainerOptions {
  /** Shown in messages and logs ("node-proxy", "nginx-epp"). */
  what: string;
  /** Image used with runtime 'docker'. */
  image: string;
  /** argv in the container; argv[0] is looked up on the image's PATH. */
  command: string[];
  /** argv on the host; default `command` (argv[0] looked up on the host's PATH). */
  localCommand?: string[];
  /** Ready when an output line matches (local: stdout only; container: stdout+stderr). */
  readyPattern?: RegExp;
  /** Ready when this loopback URL answers (any status). Either this or readyPattern or neither. */
  readyUrl?: string;
  /** Ready when a TCP connect to this loopback port (on ctx.host) succeeds: for servers that print nothing. */
  readyPort?: number;
  /** Default 20 s (a container's first start can be slower than a process's). */
  readyTimeoutMs?: number;
  /** Extra environment on top of the host's (local) or the image's plus the host's EPPKIT_* variables (container). */
  env?: Record<string, string>;
  /** Host paths the command reads or writes besides ctx.workDir (always mounted), same path inside. */
  binds?: string[];
  /** Output appended to this file (for the report). */
  logFile?: string;
  /** Working directory; default ctx.workDir. */
  cwd?: string;
}

/** What both runtimes hand back. */
export interface StartedProcessOrContainer extends AsyncDisposable {
  readonly what: string;
  readonly runtime: Runtime;
  /** The match of readyPattern, when one was given. */
  readonly readyMatch: RegExpMatchArray | undefined;
  readonly running: boolean;
  /** The child's pid (local); undefined for a container (its pids live in its own namespace). */
  readonly pid: number | undefined;
  /** The pid on this host: the child's (local) or the container's init as the host sees it (for /proc sampling). */
  readonly hostPid: number | undefined;
  /** How it ended (code or signal name), once it has; undefined while it runs. */
  readonly exitStatus: ExitStatus | undefined;
  /** Resolves when it has ended (a container: with `docker inspect`'s exit code). */
  readonly exited: Promise<ExitStatus | undefined>;
  logs(): string;
  tail(chars: number): string;
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after graceMs (default 3 s). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL now. */
  kill(): Promise<void>;
}

/** The argv that runs `eppkit <args>` here (this checkout's Node 24) and in eppkit/node. */
export function eppkitInvocation(args: string[]): Pick<ProcessOrContainerOptions, 'image' | 'command' | 'localCommand'> {
  const local = eppkitCommand();
  return { image: IMAGES_BY_ROLE.eppkit, command: [CONTAINER_PATHS.eppkit, ...args], localCommand: [local.command, ...local.args, ...args] };
}

/** For a driver's available(): docker reachable and the image built. Never throws. */
export async function containerAvailable(image: string): Promise<Availability> {
  const d = await dockerAvailable();
  if (!d.ok) return d;
  if (!(await inspectImage(image))) return { ok: false, reason: `image ${image} is not built: run \`eppkit build images\`` };
  return { ok: true };
}

async function waitForUrl(url: string, timeoutMs: number, alive: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (!alive()) throw new EppkitError('EPPKIT_START_FAILED', { what, reason: `exited before ${url} answered` });
      if (Date.now() > deadline) throw new EppkitError('EPPKIT_START_FAILED', { what, reason: `${url} did not answer within ${timeoutMs} ms` });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function fromProcess(proc: ManagedProcess, readyMatch: RegExpMatchArray | undefined): StartedProcessOrContainer {
  return {
    what: proc.what,
    runtime: 'local',
    readyMatch,
    pid: proc.pid,
    hostPid: proc.pid,
    get exitStatus() {
      return proc.exitStatus;
    },
    exited: proc.exited,
    get running() {
      return proc.running;
    },
    logs: () => proc.logs(),
    tail: (n) => proc.tail(n),
    waitForLine: (re, ms) => proc.waitForLine(re, ms),
    stop: (graceMs) => proc.stop(graceMs),
    kill: () => proc.kill(),
    [Symbol.asyncDispose]: () => proc.stop(),
  };
}

function fromContainer(c: StartedEppkitContainer): StartedProcessOrContainer {
  return {
    what: c.what,
    runtime: 'docker',
    readyMatch: c.readyMatch,
    pid: undefined,
    get hostPid() {
      return c.hostPid;
    },
    get exitStatus() {
      return c.exitStatus;
    },
    exited: c.exited,
    get running() {
      return c.running;
    },
    logs: () => c.logs(),
    tail: (n) => c.tail(n),
    waitForLine: (re, ms) => c.waitForLine(re, ms),
    stop: (graceMs) => c.stop(graceMs),
    kill: () => c.kill(),
    [Symbol.asyncDispose]: () => c.stop(),
  };
}

let eppkitImageChecked: Promise<void> | undefined;

/**
 * eppkit/node carries a copy of this checkout's sources: make sure it is the current one
 * before the first container of a run (a no-op costing a hash of the sources when nothing
 * changed), so `--runtime docker` never tests stale code. Once per process.
 */
export function ensureEppkitImageCurrent(): Promise<void> {
  eppkitImageChecked ??= (async () => {
    const { buildImages, formatImageResult } = await import('./build-images.ts');
    const results = await buildImages({ only: ['node'] }).catch((e: unknown) => {
      const why = e instanceof EppkitError ? e.message : String(e);
      throw new EppkitError('EPPKIT_BUILD_FAILED', {
        what: IMAGES_BY_ROLE.eppkit,
        reason: `refreshing it from this checkout failed (${why}); set EPPKIT_DOCKER_NO_REFRESH=1 to run the image as it is`,
      });
    });
    for (const r of results) if (r.status === 'built') process.stderr.write(`[eppkit] ${IMAGES_BY_ROLE.eppkit} was out of date: ${formatImageResult(r)}\n`);
  })();
  return eppkitImageChecked;
}

/** Starts `opts.command` as ctx.runtime says and waits until it is ready. */
export async function startProcessOrContainer(ctx: DriverContext, opts: ProcessOrContainerOptions): Promise<StartedProcessOrContainer> {
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  let started: StartedProcessOrContainer;
  if (ctx.runtime === 'docker') {
    if (opts.image === IMAGES_BY_ROLE.eppkit && process.env.EPPKIT_DOCKER_NO_REFRESH !== '1') await ensureEppkitImageCurrent();
    const avail = await containerAvailable(opts.image);
    if (!avail.ok) throw new EppkitError('EPPKIT_START_FAILED', { what: `${opts.what} (container ${opts.image})`, reason: avail.reason ?? 'docker unavailable' });
    let c = new EppkitContainer(opts.image)
      .withWhat(opts.what)
      .withCommand(opts.command)
      .withBind(ctx.workDir)
      .withWorkingDir(opts.cwd ?? ctx.workDir)
      .withStartupTimeout(timeoutMs);
    for (const b of opts.binds ?? []) c = c.withBind(b);
    // As a local child inherits the environment, the container gets eppkit's own settings.
    const inherited = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('EPPKIT_') && e[1] !== undefined));
    c = c.withEnv({ ...inherited, ...opts.env });
    if (opts.logFile) c = c.withLogFile(opts.logFile);
    if (opts.readyPattern) c = c.withWaitForLog(opts.readyPattern);
    if (opts.readyUrl) c = c.withWaitForHttp(opts.readyUrl);
    if (opts.readyPort !== undefined) c = c.withWaitForTcp(ctx.host, opts.readyPort);
    started = fromContainer(await c.start());
  } else {
    const argv = opts.localCommand ?? opts.command;
    const [command, ...args] = argv;
    if (!command) throw new EppkitError('EPPKIT_USAGE', { reason: `${opts.what}: empty command` });
    const proc = new ManagedProcess({
      what: opts.what,
      command,
      args,
      cwd: opts.cwd ?? ctx.workDir,
      env: { ...process.env, ...opts.env },
      logFile: opts.logFile,
    });
    try {
      const m = opts.readyPattern ? await proc.waitForLine(opts.readyPattern, timeoutMs) : undefined;
      if (opts.readyUrl) await waitForUrl(opts.readyUrl, timeoutMs, () => proc.running, opts.what);
      if (opts.readyPort !== undefined) {
        await waitForTcp(ctx.host, opts.readyPort, timeoutMs, () => !proc.running).catch((e: Error) => {
          throw new EppkitError('EPPKIT_START_FAILED', { what: opts.what, reason: `${e.message}; output:\n${proc.tail(2000)}` });
        });
      }
      started = fromProcess(proc, m);
    } catch (e) {
      await proc.kill();
      throw e;
    }
  }
  // The run was cancelled (Ctrl-C, suite timeout): take the data plane down with it.
  if (ctx.signal) {
    if (ctx.signal.aborted) await started.kill();
    else ctx.signal.addEventListener('abort', () => void started.kill(), { once: true });
  }
  return started;
}
