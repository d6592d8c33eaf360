// A child process the harness owns: spawned with its output kept (in memory for failure
// excerpts and on disk for the report), ready when a line of its stdout matches, stopped
// with SIGTERM (SIGKILL after a grace period) or killed outright. AsyncDisposable.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { EppkitError } from '../../core/errors.ts';
import { unwatchGroup, watchGroup } from '../launch/watchdog.ts';

export interface ManagedProcessOptions {
  /** Shown in messages ("mock EPP", "node-proxy"). */
  what: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** File that receives stdout and stderr (appended), for the report. */
  logFile?: string;
  /** Keep at most this many characters of output in memory. Default 256 KiB. */
  maxLogChars?: number;
}

/** Every child process started and not yet exited, so an interrupted run can take them down. */
const LIVE = new Set<ManagedProcess>();
let exitHookInstalled = false;

/** SIGKILL every managed child still running, with its process group (Ctrl-C of `eppkit run`): no orphan keeps a port. */
export function killAllManagedProcesses(): void {
  for (const p of LIVE) killGroup(p.child, 'SIGKILL');
}

/**
 * Signals a child's whole process group (it leads one: spawned detached), so what it forked
 * goes too: an nginx master's workers outlive a SIGKILLed master otherwise. Falls back to the
 * child alone.
 */
function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) return void process.kill(-child.pid, sig);
  } catch {
    // No such group (not spawned yet, or gone): the child alone.
  }
  child.kill(sig);
}

/**
 * For a command that starts planes, EPPs and backends (run, fuzz): on Ctrl-C or SIGTERM, take
 * every managed child down, say so, and exit 130.
 */
export function stopAllOnInterrupt(): void {
  const interrupted = (): void => {
    killAllManagedProcesses();
    process.stderr.write('\ninterrupted: stopped every process this run started\n');
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
}

export class ManagedProcess implements AsyncDisposable {
  readonly what: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buf = '';
  private readonly maxChars: number;
  private lineWaiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  private stdoutLines: string[] = [];
  private partial = '';
  private file: WriteStream | undefined;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(opts: ManagedProcessOptions) {
    this.what = opts.what;
    this.maxChars = opts.maxLogChars ?? 256 * 1024;
    if (opts.logFile) this.file = createWriteStream(opts.logFile, { flags: 'a' });
    // Its own process group: stopping it stops what it forked (killGroup), and the watchdog
    // (harness/launch/watchdog.ts) can take the group down if eppkit dies without stopping it.
    this.child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    LIVE.add(this);
    watchGroup(this.child.pid);
    // Children lead their own groups, so nothing the terminal sends reaches them: a process that
    // exits (process.exit, end of a test worker) takes what it still runs down with it.
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', killAllManagedProcesses);
    }
    this.child.stdout?.on('data', (d: Buffer) => this.onOutput(d, true));
    this.child.stderr?.on('data', (d: Buffer) => this.onOutput(d, false));
    this.exited = new Promise((resolve) => {
      this.child.once('error', (e) => {
        LIVE.delete(this);
        this.append(`[eppkit] ${this.what} could not be spawned: ${e.message}\n`);
        this.exitInfo = { code: null, signal: null };
        resolve(this.exitInfo);
      });
      this.child.once('exit', (code, signal) => {
        LIVE.delete(this);
        // What it forked and left behind (a SIGKILLed nginx master's workers) goes with it.
        if (this.child.pid !== undefined) {
          try {
            process.kill(-this.child.pid, 'SIGKILL');
          } catch {
            // The group is empty: nothing left.
          }
        }
        unwatchGroup(this.child.pid);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** How it ended (exit code or signal), once it has. */
  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitInfo;
  }

  logs(): string {
    return this.buf;
  }

  private append(text: string): void {
    this.buf += text;
    if (this.buf.length > this.maxChars) this.buf = this.buf.slice(this.buf.length - this.maxChars);
    this.file?.write(text);
  }

  private onOutput(d: Buffer, isStdout: boolean): void {
    const text = d.toString('utf8');
    this.append(text);
    if (!isStdout) return;
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.stdoutLines.push(line);
      this.lineWaiters = this.lineWaiters.filter((w) => {
        const m = line.match(w.re);
        if (m) w.resolve(m);
        return !m;
      });
    }
  }

  /** Resolves with the first stdout line matching `re` (already seen lines count). */
  async waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    for (const line of this.stdoutLines) {
      const m = line.match(re);
      if (m) return m;
    }
    let timer: NodeJS.Timeout | undefined;
    const matched = new Promise<RegExpMatchArray>((resolve) => this.lineWaiters.push({ re, resolve }));
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EppkitError('EPPKIT_START_FAILED', { what: this.what, reason: `no "${re.source}" line within ${timeoutMs} ms; output:\n${this.tail(2000)}` })),
        timeoutMs,
      );
    });
    const died = this.exited.then((x) => {
      throw new EppkitError('EPPKIT_START_FAILED', {
        what: this.what,
        reason: `exited (${x.signal ?? `code ${x.code}`}) before it was ready; output:\n${this.tail(2000)}`,
      });
    });
    try {
      return await Promise.race([matched, timeout, died]);
    } finally {
      clearTimeout(timer);
    }
  }

  tail(chars: number): string {
    return this.buf.length > chars ? `…${this.buf.slice(-chars)}` : this.buf;
  }

  /** SIGTERM, then SIGKILL when it has not exited after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return void (await this.closeFile());
    this.child.kill('SIGTERM');
    const t = setTimeout(() => killGroup(this.child, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
    await this.closeFile();
  }

  /** SIGKILL: no drain, no goodbye, as a crashed process. */
  async kill(): Promise<void> {
    if (this.running) killGroup(this.child, 'SIGKILL');
    await this.exited;
    await this.closeFile();
  }

  private closeFile(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    if (!f) return Promise.resolve();
    return new Promise((resolve) => f.end(resolve));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * A Node that runs TypeScript (type stripping, >= 22.18): this one, or the Node 24 that
 * `npm ci` installs (node_modules/node) when this one is older (vitest under the system's Node).
 */
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
