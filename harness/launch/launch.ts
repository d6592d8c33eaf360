// The one way the harness starts something (a data plane, a mock EPP, a backend, a helper):
// as a local child process or, with runtime 'docker', as the same command in a container on the
// host network with the work dir bind-mounted at the same path (so rendered configs with
// absolute paths, 127.0.0.x addresses and port 0 work unchanged in both), then waits until its
// wait strategy says it is ready. What comes back is AsyncDisposable.
//
//   await using dp = await launch(ctx, {
//     what: 'node-proxy',
//     ...eppkitInvocation(['node-proxy', '--listen', '127.0.0.1:0', ...]),
//     waitFor: Wait.forLogLine(/listening on (http:\/\/\S+)/),
//     logFile: join(ctx.workDir, 'node-proxy.log'),
//   });
//   const url = dp.ready[1];
import { existsSync } from 'node:fs';
import { eppkitVariables } from '../../core/env.ts';
import { EppkitError } from '../../core/errors.ts';
import { CONTAINER_PATHS, IMAGES_BY_ROLE, containerAvailable, ensureEppkitImageCurrent } from '../containers/image-roles.ts';
import type { Runtime } from '../data-planes/data-plane-driver.ts';
import { EppkitContainer } from './eppkit-container.ts';
import type { Launched } from './launched.ts';
import { ManagedProcess, commandOf } from './managed-process.ts';
import { startFailed, type WaitStrategy } from './wait-strategy.ts';

export type { Launched } from './launched.ts';

export interface LaunchContext {
  runtime: Runtime;
  /** Mounted at the same path in a container; the default working directory. */
  workDir: string;
  /** Cancels the launch and, later, kills what it started (Ctrl-C, suite timeout). */
  signal?: AbortSignal | undefined;
}

export interface LaunchSpec<T> {
  /** Shown in messages and logs ("node-proxy", "nginx"). */
  what: string;
  /** Image used with runtime 'docker'. */
  image: string;
  /** argv in the container; argv[0] is looked up on the image's PATH. */
  command: string[];
  /** argv on the host; default `command` (argv[0] looked up on the host's PATH). */
  localCommand?: string[];
  /** Ready when this says so; default: as soon as it runs. */
  waitFor?: WaitStrategy<T>;
  /** For the wait (unless it has its own). Default 20 s (a container's first start can be slower than a process's). */
  startupTimeoutMs?: number;
  /** Extra environment on top of the host's (local) or the image's plus the host's EPPKIT_* variables (container). */
  env?: Record<string, string>;
  /** Host paths the command reads or writes besides workDir (always mounted), same path inside. */
  binds?: string[];
  /** Output appended to this file (for the report). */
  logFile?: string;
  /** Working directory; default ctx.workDir. */
  cwd?: string;
  /** More to show when it fails to start (nginx: its error.log). */
  failureContext?: () => string;
}

/** A Node that runs TypeScript (type stripping, >= 22.18): this one, or the Node 24 that `npm ci` installs. */
export function typeScriptNode(): string {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return process.execPath;
  const bundled = new URL('../../node_modules/node/bin/node', import.meta.url).pathname;
  return existsSync(bundled) ? bundled : process.execPath;
}

/** The command line that runs this checkout's `eppkit` (same Node, no PATH lookup). */
export function eppkitCommand(): { command: string; args: string[] } {
  const bin = new URL('../../bin/eppkit.js', import.meta.url).pathname;
  return { command: process.execPath, args: [bin] };
}

/** The argv that runs `eppkit <args>` here (this checkout) and in eppkit/node. */
export function eppkitInvocation(args: string[]): Pick<LaunchSpec<unknown>, 'image' | 'command' | 'localCommand'> {
  const local = eppkitCommand();
  return { image: IMAGES_BY_ROLE.eppkit, command: [CONTAINER_PATHS.eppkit, ...args], localCommand: [local.command, ...local.args, ...args] };
}

async function startContainer(ctx: LaunchContext, spec: LaunchSpec<unknown>, timeoutMs: number): Promise<Launched> {
  if (spec.image === IMAGES_BY_ROLE.eppkit) await ensureEppkitImageCurrent();
  const avail = await containerAvailable(spec.image);
  if (!avail.ok) throw new EppkitError('EPPKIT_START_FAILED', { what: `${spec.what} (container ${spec.image})`, reason: avail.reason ?? 'docker unavailable' });
  let c = new EppkitContainer(spec.image)
    .withWhat(spec.what)
    .withCommand(spec.command)
    .withBind(ctx.workDir)
    .withWorkingDir(spec.cwd ?? ctx.workDir)
    .withStartupTimeout(timeoutMs)
    // As a local child inherits the environment, the container gets eppkit's own settings.
    .withEnv({ ...eppkitVariables(), ...spec.env });
  for (const b of spec.binds ?? []) c = c.withBind(b);
  if (spec.logFile) c = c.withLogFile(spec.logFile);
  if (spec.waitFor) c = c.withWaitStrategy(spec.waitFor);
  return c.start();
}

async function startProcess(ctx: LaunchContext, spec: LaunchSpec<unknown>, timeoutMs: number): Promise<Launched> {
  const { command, args } = commandOf(spec.what, spec.localCommand ?? spec.command);
  const proc = new ManagedProcess({ what: spec.what, command, args, cwd: spec.cwd ?? ctx.workDir, env: { ...process.env, ...spec.env }, logFile: spec.logFile });
  try {
    if (spec.waitFor) proc.ready = await spec.waitFor.waitUntilReady(proc, { timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  } catch (e) {
    // SIGTERM first: an nginx master takes its workers down with it, SIGKILL would orphan them.
    await proc.stop(2000);
    throw startFailed(proc, e);
  }
  return proc;
}

/** Starts `spec.command` as ctx.runtime says and waits until it is ready. */
export async function launch<T = undefined>(ctx: LaunchContext, spec: LaunchSpec<T>): Promise<Launched<T>> {
  const timeoutMs = spec.startupTimeoutMs ?? 20_000;
  let started: Launched;
  try {
    started = ctx.runtime === 'docker' ? await startContainer(ctx, spec, timeoutMs) : await startProcess(ctx, spec, timeoutMs);
  } catch (e) {
    const more = spec.failureContext?.();
    if (more && e instanceof EppkitError && e.code === 'EPPKIT_START_FAILED') throw new EppkitError('EPPKIT_START_FAILED', { ...e.details, reason: `${e.details.reason}\n${more}` });
    throw e;
  }
  // The run was cancelled (Ctrl-C, suite timeout): take it down with it.
  if (ctx.signal) {
    if (ctx.signal.aborted) await started.kill();
    else ctx.signal.addEventListener('abort', () => void started.kill(), { once: true });
  }
  return started as Launched<T>;
}
