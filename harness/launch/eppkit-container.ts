// A container the harness owns, over testcontainers: always on the host network (so every
// socket is on the host's loopback, as the network rule demands, and a port the caller picks,
// or port 0, means the same inside and out), from a local image (never pulled: there is no
// registry), with its output kept like a ManagedProcess (LogBuffer: memory + optional file) and
// ready when its wait strategy says so (wait-strategy.ts, the same family as for processes).
//
//   await using c = await new EppkitContainer('eppkit/node')
//     .withCommand(['eppkit', 'backend', '--listen', '127.0.0.2:0'])
//     .withWaitStrategy(Wait.forLogLine(/listening on (http:\/\/\S+)/))
//     .start();
//   (c.ready as RegExpMatchArray)[1]  // the URL the backend printed
import { spawnSync } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { StartedTestContainer } from 'testcontainers';
import { EppkitError } from '../../core/errors.ts';
import { docker, dockerBin, inspectImage } from '../containers/docker-cli.ts';
import { track, untrack } from './interrupt.ts';
import type { Launched } from './launched.ts';
import { LogBuffer } from './log-buffer.ts';
import { Wait, startFailed, type ExitStatus, type WaitStrategy } from './wait-strategy.ts';

// Ryuk (the reaper) is an image from a registry; there is none here. Containers are removed by
// stop()/dispose instead. Set before testcontainers is first loaded (it is imported lazily).
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

let reaped: Promise<void> | undefined;

/**
 * Without Ryuk, a harness killed with SIGKILL leaves its containers running (on host ports).
 * Once per process, remove containers labelled by an eppkit process that no longer exists.
 */
export function reapOrphans(): Promise<void> {
  reaped ??= removeOrphanContainers().then(() => undefined);
  return reaped;
}

/** Removes every eppkit container whose owning process is gone; returns their ids. */
export async function removeOrphanContainers(): Promise<string[]> {
  const r = await docker(['ps', '-a', '--no-trunc', '--filter', 'label=eppkit.owner=harness', '--format', '{{.ID}} {{.Label "eppkit.pid"}}']);
  if (r.code !== 0) return [];
  const dead = r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([id, pid]) => id && pid && !pidAlive(Number(pid)))
    .map(([id]) => id as string);
  if (dead.length > 0) await docker(['rm', '-f', ...dead]);
  return dead;
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface BindSpec {
  source: string;
  /** Default: the same path, so config files that name absolute paths work unchanged. */
  target?: string;
  mode?: 'rw' | 'ro';
}

export class EppkitContainer {
  private readonly image: string;
  private what: string;
  private command: string[] | undefined;
  private entrypoint: string[] | undefined;
  private env: Record<string, string> = {};
  private binds: BindSpec[] = [];
  private workingDir: string | undefined;
  private waitStrategy: WaitStrategy<unknown> | undefined;
  private startupTimeoutMs = 30_000;
  private logFile: string | undefined;
  private maxLogChars = 256 * 1024;
  private user: string | undefined;

  constructor(image: string) {
    this.image = image;
    this.what = image;
  }

  /** Name used in messages ("mock EPP in eppkit/node"). Default: the image. */
  withWhat(what: string): this {
    this.what = what;
    return this;
  }

  withCommand(command: string[]): this {
    this.command = [...command];
    return this;
  }

  withEntrypoint(entrypoint: string[]): this {
    this.entrypoint = [...entrypoint];
    return this;
  }

  withEnv(env: Record<string, string>): this {
    this.env = { ...this.env, ...env };
    return this;
  }

  /** Bind-mounts a host path, by default at the same path inside (read-write). */
  withBind(source: string, target: string = source, mode: 'rw' | 'ro' = 'rw'): this {
    this.binds.push({ source, target, mode });
    return this;
  }

  withWorkingDir(dir: string): this {
    this.workingDir = dir;
    return this;
  }

  withUser(user: string): this {
    this.user = user;
    return this;
  }

  /** Ready when this says so (default: as soon as it runs); what it finds is `ready`. */
  withWaitStrategy(w: WaitStrategy<unknown>): this {
    this.waitStrategy = w;
    return this;
  }

  /** Default 30 s. */
  withStartupTimeout(ms: number): this {
    this.startupTimeoutMs = ms;
    return this;
  }

  /** Appends everything the container prints to this file (for the report). */
  withLogFile(path: string): this {
    this.logFile = path;
    return this;
  }

  async start(): Promise<StartedEppkitContainer> {
    await reapOrphans();
    // testcontainers would try to pull a missing image, from a registry there is none of.
    if (!(await inspectImage(this.image))) {
      throw new EppkitError('EPPKIT_START_FAILED', { what: `${this.what} (container ${this.image})`, reason: `image ${this.image} is not built: run \`eppkit build images\`` });
    }
    const tc = await import('testcontainers');
    const logs = new LogBuffer({ maxChars: this.maxLogChars, logFile: this.logFile });
    let c = new tc.GenericContainer(this.image)
      .withNetworkMode('host')
      .withPullPolicy({ shouldPull: () => false })
      .withLogConsumer((s) => logs.attach(s))
      .withStartupTimeout(this.startupTimeoutMs)
      .withLabels({ 'eppkit.owner': 'harness', 'eppkit.pid': String(process.pid) });
    if (this.command) c = c.withCommand(this.command);
    if (this.entrypoint) c = c.withEntrypoint(this.entrypoint);
    if (Object.keys(this.env).length > 0) c = c.withEnvironment(this.env);
    if (this.binds.length > 0) c = c.withBindMounts(this.binds.map((b) => ({ source: b.source, target: b.target ?? b.source, mode: b.mode ?? 'rw' })));
    if (this.workingDir) c = c.withWorkingDir(this.workingDir);
    if (this.user) c = c.withUser(this.user);

    let started: StartedTestContainer;
    try {
      started = await c.start();
    } catch (e) {
      // Give the log stream a moment to deliver what the container said before it died.
      await logs.whenEnded(500);
      await logs.close();
      const why = e instanceof Error ? e.message : String(e);
      throw new EppkitError('EPPKIT_START_FAILED', { what: `${this.what} (container ${this.image})`, reason: `${why}; output:\n${logs.tail(2000)}` });
    }
    const sc = new StartedEppkitContainer(this.what, this.image, started, logs);
    sc.hostPid = await containerHostPid(started.getId());
    try {
      if (this.waitStrategy) sc.ready = await this.waitStrategy.waitUntilReady(sc, { timeoutMs: this.startupTimeoutMs });
    } catch (e) {
      await sc.kill();
      throw startFailed({ what: `${this.what} (container ${this.image})`, tail: (n) => logs.tail(n) }, e);
    }
    return sc;
  }
}

/** The host pid of a running container's init (`docker inspect .State.Pid`), undefined when unknown. */
async function containerHostPid(id: string): Promise<number | undefined> {
  const r = await docker(['inspect', '--format', '{{.State.Pid}}', id], 10_000);
  const pid = Number(r.stdout.trim());
  return r.code === 0 && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** How a container ended; a code 128+N is reported as that signal. Undefined when docker forgot it (removed). */
async function containerExit(id: string): Promise<{ code: number | null; signal: string | null } | undefined> {
  const r = await docker(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', id], 10_000);
  if (r.code !== 0) return undefined;
  const [code, oom] = r.stdout.trim().split(' ');
  const n = Number(code);
  if (oom === 'true') return { code: n, signal: 'SIGKILL (OOM)' };
  if (n > 128 && n < 160) {
    const name = Object.entries(osConstants.signals).find(([, v]) => v === n - 128)?.[0];
    return { code: n, signal: name ?? `signal ${n - 128}` };
  }
  return { code: n, signal: null };
}

export class StartedEppkitContainer implements Launched {
  readonly what: string;
  readonly image: string;
  readonly runtime = 'docker' as const;
  /** Its pids live in its own namespace: see hostPid. */
  readonly pid = undefined;
  /** What its wait strategy found. */
  ready: unknown = undefined;
  private readonly container: StartedTestContainer;
  private readonly buffer: LogBuffer;
  private stopped: Promise<void> | undefined;
  /** The container's init process as this host sees it (for /proc sampling); set by start(). */
  hostPid: number | undefined;
  /** How it ended (`docker inspect`'s exit code; 128+N is signal N), once it has. */
  exitStatus: ExitStatus | undefined;
  /** Resolves when the container has ended, with its exit status when docker still knows it. */
  readonly exited: Promise<ExitStatus | undefined>;

  constructor(what: string, image: string, container: StartedTestContainer, buffer: LogBuffer) {
    this.what = what;
    this.image = image;
    this.container = container;
    this.buffer = buffer;
    // Ctrl-C of the harness: `docker rm -f` at once (no Ryuk here to reap it later).
    const killable = { killNow: () => void spawnSync(dockerBin(), ['rm', '-f', container.getId()], { stdio: 'ignore', timeout: 10_000 }) };
    track(killable);
    this.exited = new Promise((resolve) => {
      buffer.onEnded(() => {
        untrack(killable);
        void containerExit(container.getId()).then((x) => {
          this.exitStatus = x ?? { code: null, signal: null };
          resolve(x);
        });
      });
    });
  }

  get id(): string {
    return this.container.getId();
  }

  get running(): boolean {
    return this.stopped === undefined && !this.buffer.ended;
  }

  /** Everything it printed so far (stdout and stderr), at most 256 KiB. */
  logs(): string {
    return this.buffer.text();
  }

  tail(chars: number): string {
    return this.buffer.tail(chars);
  }

  nextLine(re: RegExp): Promise<RegExpMatchArray> {
    return this.buffer.nextMatch(re);
  }

  /** First output line matching `re` (already printed lines count). */
  async waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    try {
      return await Wait.forLogLine(re).waitUntilReady(this, { timeoutMs });
    } catch (e) {
      throw startFailed(this, e);
    }
  }

  /** Runs a command inside (e.g. `nginx -s reload`). */
  async exec(command: string[]): Promise<{ exitCode: number; output: string }> {
    const r = await this.container.exec(command);
    return { exitCode: r.exitCode, output: r.output };
  }

  /** SIGTERM, SIGKILL after `graceMs`; the container is removed. Idempotent. */
  stop(graceMs = 3000): Promise<void> {
    this.stopped ??= (async () => {
      try {
        await this.container.stop({ timeout: graceMs, remove: true });
      } catch {
        // Already gone (exited and auto-removed, or removed by hand): nothing left to stop.
      }
      await this.buffer.whenEnded(1000);
      await this.buffer.close();
    })();
    return this.stopped;
  }

  /** SIGKILL at once, as a crashed process. */
  kill(): Promise<void> {
    return this.stop(0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
