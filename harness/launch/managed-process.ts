// A child process the harness owns: spawned with its output kept (LogBuffer: in memory for
// failure excerpts, on disk for the report), stopped with SIGTERM (SIGKILL after a grace
// period) or killed outright. AsyncDisposable. Readiness is a wait strategy (wait-strategy.ts);
// launch() is the usual way to get one.
import { spawn, type ChildProcess } from 'node:child_process';
import { EppkitError } from '../../core/errors.ts';
import { track, untrack } from './interrupt.ts';
import type { Launched } from './launched.ts';
import { LogBuffer } from './log-buffer.ts';
import { Wait, startFailed, type ExitStatus } from './wait-strategy.ts';

export interface ManagedProcessOptions {
  /** Shown in messages ("mock EPP", "node-proxy"). */
  what: string;
  command: string;
  args: string[];
  cwd?: string;
  /** The whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** File that receives stdout and stderr (appended), for the report. */
  logFile?: string;
  /** Keep at most this many characters of output in memory. Default 256 KiB. */
  maxLogChars?: number;
}

export class ManagedProcess implements Launched {
  readonly what: string;
  readonly runtime = 'local' as const;
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  /** What its wait strategy found (set by launch()). */
  ready: unknown = undefined;
  private readonly output: LogBuffer;
  private exitInfo: ExitStatus | undefined;

  constructor(opts: ManagedProcessOptions) {
    this.what = opts.what;
    this.output = new LogBuffer({ maxChars: opts.maxLogChars, logFile: opts.logFile });
    // Its own process group: stopping it stops what it forked (an nginx master's workers
    // outlive a SIGKILLed master otherwise), and the watchdog (watchdog.ts) can take the group
    // down if eppkit dies without stopping it.
    this.child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const killable = { killNow: () => killGroup(this.child, 'SIGKILL'), ...(this.child.pid !== undefined ? { group: this.child.pid } : {}) };
    track(killable);
    // Ready lines are stdout's; stderr is kept for the report and failure excerpts.
    if (this.child.stdout) this.output.attach(this.child.stdout, { lines: true, endsBuffer: false });
    if (this.child.stderr) this.output.attach(this.child.stderr, { lines: false, endsBuffer: false });
    this.exited = new Promise((resolve) => {
      const ended = (x: ExitStatus): void => {
        // What it forked and left behind (a SIGKILLed nginx master's workers) goes with it.
        if (this.child.pid !== undefined) {
          try {
            process.kill(-this.child.pid, 'SIGKILL');
          } catch {
            // The group is empty: nothing left.
          }
        }
        untrack(killable);
        this.exitInfo = x;
        this.output.end();
        resolve(x);
      };
      this.child.once('error', (e) => {
        this.output.push(`[eppkit] ${this.what} could not be spawned: ${e.message}\n`, false);
        ended({ code: null, signal: null });
      });
      this.child.once('exit', (code, signal) => ended({ code, signal }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hostPid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** How it ended (exit code or signal), once it has. */
  get exitStatus(): ExitStatus | undefined {
    return this.exitInfo;
  }

  logs(): string {
    return this.output.text();
  }

  tail(chars: number): string {
    return this.output.tail(chars);
  }

  nextLine(re: RegExp): Promise<RegExpMatchArray> {
    return this.output.nextMatch(re);
  }

  /** The first stdout line matching `re` (already seen lines count); EPPKIT_START_FAILED after `timeoutMs` or when it exits first. */
  async waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    try {
      return await Wait.forLogLine(re).waitUntilReady(this, { timeoutMs });
    } catch (e) {
      throw startFailed(this, e);
    }
  }

  /** Sends a signal (a plane file's stop signal); no wait. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL when it has not exited after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => killGroup(this.child, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    await this.output.close();
  }

  /** SIGKILL: no drain, no goodbye, as a crashed process. */
  async kill(): Promise<void> {
    if (this.running) killGroup(this.child, 'SIGKILL');
    await this.exited;
    await this.output.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Signals a child's whole process group (it leads one: spawned detached); falls back to the child alone. */
function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) return void process.kill(-child.pid, sig);
  } catch {
    // No such group (gone): the child alone.
  }
  child.kill(sig);
}

/** Spawn problems that are the user's (a command that is not there) read as such. */
export function commandOf(what: string, argv: readonly string[]): { command: string; args: string[] } {
  const [command, ...args] = argv;
  if (!command) throw new EppkitError('EPPKIT_USAGE', { reason: `${what}: empty command` });
  return { command, args };
}
