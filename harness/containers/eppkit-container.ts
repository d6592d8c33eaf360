// A container the harness owns, over testcontainers: always on the host network (so every
// socket is on the host's loopback, as the network rule demands, and a port the caller picks,
// or port 0, means the same inside and out), from a local image (never pulled: there is no
// registry), with its output kept like a ManagedProcess (memory + optional file) and ready when
// a log line matches or an HTTP URL on loopback answers.
//
//   await using c = await new EppkitContainer('eppkit/node')
//     .withCommand(['eppkit', 'backend', '--listen', '127.0.0.2:0'])
//     .withWaitForLog(/listening on (http:\/\/\S+)/)
//     .start();
//   c.readyMatch?.[1]  // the URL the backend printed
import { createWriteStream, type WriteStream } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import type { StartedTestContainer } from 'testcontainers';
import { EppkitError } from '../../core/errors.ts';
import { docker, inspectImage } from './docker-cli.ts';
import { canConnect } from '../../core/net.ts';

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

/** Output kept in memory, split in lines, with waiters for a line matching a pattern. */
class LogBuffer {
  private buf = '';
  private partial = '';
  private lines: string[] = [];
  private waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  private file: WriteStream | undefined;
  ended = false;
  private endWaiters: Array<() => void> = [];
  private readonly maxChars: number;

  constructor(maxChars: number, logFile?: string) {
    this.maxChars = maxChars;
    if (logFile) this.file = createWriteStream(logFile, { flags: 'a' });
  }

  attach(stream: Readable): void {
    stream.on('data', (d: Buffer | string) => this.push(typeof d === 'string' ? d : d.toString('utf8')));
    stream.on('error', () => this.end());
    stream.on('end', () => this.end());
    stream.on('close', () => this.end());
  }

  push(text: string): void {
    this.buf += text;
    if (this.buf.length > this.maxChars) this.buf = this.buf.slice(this.buf.length - this.maxChars);
    this.file?.write(text);
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      if (this.lines.length > 10_000) this.lines.shift();
      this.waiters = this.waiters.filter((w) => {
        const m = line.match(w.re);
        if (m) w.resolve(m);
        return !m;
      });
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.endWaiters) w();
    this.endWaiters = [];
    for (const f of this.endListeners) f();
  }

  private endListeners: Array<() => void> = [];

  /** Calls `f` once when the stream ends (at once when it has). */
  onEnded(f: () => void): void {
    if (this.ended) f();
    else this.endListeners.push(f);
  }

  /** Resolves when the log stream has ended (the container exited), or after `ms`. */
  whenEnded(ms: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.endWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  find(re: RegExp): RegExpMatchArray | undefined {
    for (const line of this.lines) {
      const m = line.match(re);
      if (m) return m;
    }
    return undefined;
  }

  waitFor(re: RegExp): Promise<RegExpMatchArray> {
    const seen = this.find(re);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ re, resolve }));
  }

  text(): string {
    return this.buf;
  }

  tail(chars: number): string {
    return this.buf.length > chars ? `…${this.buf.slice(-chars)}` : this.buf;
  }

  close(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    if (!f) return Promise.resolve();
    return new Promise((resolve) => f.end(resolve));
  }
}

export class EppkitContainer {
  private readonly image: string;
  private what: string;
  private command: string[] | undefined;
  private entrypoint: string[] | undefined;
  private env: Record<string, string> = {};
  private binds: BindSpec[] = [];
  private workingDir: string | undefined;
  private logRe: RegExp | undefined;
  private httpUrl: string | undefined;
  private tcp: { host: string; port: number } | undefined;
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

  /** Ready when a line of output (stdout or stderr) matches; the match is `readyMatch`. */
  withWaitForLog(re: RegExp): this {
    this.logRe = re;
    return this;
  }

  /** Ready when this loopback URL answers any HTTP status (e.g. http://127.0.0.1:9901/ready). */
  withWaitForHttp(url: string): this {
    const host = new URL(url).hostname;
    if (!/^127\.|^\[::1\]$|^localhost$/.test(host)) throw new EppkitError('EPPKIT_USAGE', { reason: `readiness URL must be on loopback (got ${url})` });
    this.httpUrl = url;
    return this;
  }

  /** Ready when a TCP connection to this loopback host:port succeeds (nginx, which prints nothing). */
  withWaitForTcp(host: string, port: number): this {
    if (!/^127\.|^::1$|^localhost$/.test(host)) throw new EppkitError('EPPKIT_USAGE', { reason: `readiness address must be on loopback (got ${host})` });
    this.tcp = { host, port };
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
    const logs = new LogBuffer(this.maxLogChars, this.logFile);
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
    // testcontainers' log strategy also fails fast when the container exits before the line.
    if (this.logRe) c = c.withWaitStrategy(tc.Wait.forLogMessage(this.logRe));

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
      if (this.logRe) sc.readyMatch = await withTimeout(logs.waitFor(this.logRe), 5_000, `${this.what}: ready line not captured`);
      if (this.httpUrl) await waitForHttp(this.httpUrl, this.startupTimeoutMs, () => logs.ended);
      if (this.tcp) await waitForTcp(this.tcp.host, this.tcp.port, this.startupTimeoutMs, () => logs.ended);
    } catch (e) {
      await sc.kill();
      throw new EppkitError('EPPKIT_START_FAILED', { what: `${this.what} (container ${this.image})`, reason: `${e instanceof Error ? e.message : String(e)}; output:\n${logs.tail(2000)}` });
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

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(t));
}

export async function waitForTcp(host: string, port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(host, port))) {
    if (exited()) throw new Error(`exited before ${host}:${port} accepted connections`);
    if (Date.now() > deadline) throw new Error(`${host}:${port} did not accept connections within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForHttp(url: string, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (exited()) throw new Error(`the container exited before ${url} answered`);
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export class StartedEppkitContainer implements AsyncDisposable {
  readonly what: string;
  readonly image: string;
  /** The match of the readiness pattern (withWaitForLog), e.g. to read the port printed. */
  readyMatch: RegExpMatchArray | undefined;
  private readonly container: StartedTestContainer;
  private readonly buffer: LogBuffer;
  private stopped: Promise<void> | undefined;
  /** The container's init process as this host sees it (for /proc sampling); set by start(). */
  hostPid: number | undefined;
  /** How it ended (`docker inspect`'s exit code; 128+N is signal N), once it has. */
  exitStatus: { code: number | null; signal: string | null } | undefined;
  /** Resolves when the container has ended, with its exit status when docker still knows it. */
  readonly exited: Promise<{ code: number | null; signal: string | null } | undefined>;

  constructor(what: string, image: string, container: StartedTestContainer, buffer: LogBuffer) {
    this.what = what;
    this.image = image;
    this.container = container;
    this.buffer = buffer;
    this.exited = new Promise((resolve) => {
      buffer.onEnded(() => {
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

  /** First output line matching `re` (already printed lines count). */
  async waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    try {
      return await withTimeout(this.buffer.waitFor(re), timeoutMs, `no "${re.source}" line within ${timeoutMs} ms`);
    } catch (e) {
      throw new EppkitError('EPPKIT_TIMEOUT', { what: `${this.what}: waiting for "${re.source}"`, ms: timeoutMs }, [{ path: '', message: (e as Error).message }]);
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
