// Plane health: is the data plane under test still the one we started, and did it crash,
// alert or exit on its own? A status-only verdict passes a plane whose nginx worker crashed
// (the master respawns it and the next request succeeds), so every verdict (run, bench, fuzz)
// also asks the plane's StartedDataPlane.health(), built here from two sources:
//   - the process handles eppkit holds (exit code / signal of a process that ended while it
//     was expected to run; a container's exit code from `docker inspect`);
//   - the plane's log files, scanned incrementally for per-driver crash and alert patterns
//     (nginx `exited on signal`, `[alert]`, `[emerg]`, `core dumped`; Envoy's crash and
//     backtrace lines; Node's fatal errors; a plane file's own `crashPatterns`).
// pids() lists every OS process of the plane now (a master and all its workers, Envoy, the
// node process), for /proc sampling (core/proc-sampler.ts).
//
//   const health = new PlaneHealthMonitor('nginx')
//     .withProcess('nginx', proc)                                  // handle eppkit started
//     .withLogFile('nginx error.log', join(workDir, 'error.log'), NGINX_CRASH_PATTERNS)
//     .withLogFile('nginx', join(workDir, 'nginx.log'), NGINX_CRASH_PATTERNS);
//   return { ..., pids: () => health.pids(), health: () => health.health(), stop: () => health.stopping(() => proc.stop()) };
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { processTree, sampleProcess } from '../../core/proc-sampler.ts';

export type PlaneProblemKind = 'exited' | 'crash' | 'alert';

export interface PlaneProblem {
  kind: PlaneProblemKind;
  /** The process or log the problem comes from ("nginx error.log", "envoy", "node-proxy"). */
  source: string;
  /** The log line as written, or what the process handle says ("exited on SIGSEGV"). */
  line: string;
  /** For `exited`: the pid that ended. */
  pid?: number;
}

export interface PlaneHealth {
  ok: boolean;
  /** Every problem found since the plane started, oldest first (at most 50 kept). */
  problems: PlaneProblem[];
}

/** One pattern of a crash (the plane process or a worker died) or an alert (it says it is broken). */
export interface CrashPattern {
  re: RegExp;
  kind: 'crash' | 'alert';
}

export const NGINX_CRASH_PATTERNS: readonly CrashPattern[] = [
  { re: /exited on signal \d+/, kind: 'crash' },
  { re: /core dumped/, kind: 'crash' },
  { re: /\[alert\]/, kind: 'alert' },
  { re: /\[emerg\]/, kind: 'alert' },
];

// Envoy's signal handler prints "Caught Segmentation fault, suspect faulting address ..." then
// "Backtrace (use tools/stack_decode.py to get line numbers):" and frames as [critical][backtrace];
// ASSERT/RELEASE_ASSERT print "assert failure:"; PANIC prints "panic:".
export const ENVOY_CRASH_PATTERNS: readonly CrashPattern[] = [
  { re: /Caught (Segmentation fault|Abort|Aborted|Bus error|Illegal instruction|Floating point exception|signal \d+)/, kind: 'crash' },
  { re: /Backtrace \(use tools\/stack_decode\.py/, kind: 'crash' },
  { re: /\]\[critical\]\[(backtrace|assert)\]/, kind: 'crash' },
  { re: /assert failure: /, kind: 'crash' },
  { re: /\]\[critical\]\[/, kind: 'alert' },
];

// Node: an uncaught exception or unhandled rejection ends with "Node.js v24.x.y" on stderr;
// V8 aborts print "FATAL ERROR:" (heap exhaustion among them).
export const NODE_CRASH_PATTERNS: readonly CrashPattern[] = [
  { re: /^Node\.js v\d+\.\d+\.\d+\s*$/, kind: 'crash' },
  { re: /FATAL ERROR: /, kind: 'crash' },
  { re: /JavaScript heap out of memory/, kind: 'crash' },
  { re: /Segmentation fault|core dumped/, kind: 'crash' },
];

/** A plane of unknown make: only what every crash says (a plane file of kind `plain`). */
export const PLAIN_CRASH_PATTERNS: readonly CrashPattern[] = [
  { re: /exited on signal \d+|core dumped|Segmentation fault/, kind: 'crash' },
];

/** The default patterns of a plane file's `kind` (and of each of its logs' `kind`). */
export const CRASH_PATTERNS_BY_KIND: Readonly<Record<'nginx' | 'envoy' | 'node' | 'plain', readonly CrashPattern[]>> = {
  nginx: NGINX_CRASH_PATTERNS,
  envoy: ENVOY_CRASH_PATTERNS,
  node: NODE_CRASH_PATTERNS,
  plain: PLAIN_CRASH_PATTERNS,
};

/** What the monitor needs from a process handle (StartedProcessOrContainer fits). */
export interface WatchedProcess {
  readonly running: boolean;
  /** Local: the child's pid; a container: its init's pid on the host (undefined until known). */
  readonly hostPid?: number | undefined;
  readonly pid?: number | undefined;
  /** How it ended, once it has (code, or signal name); undefined while running or unknown. */
  readonly exitStatus?: ExitStatus | undefined;
  /** Resolves when it has ended. */
  readonly exited?: Promise<ExitStatus | undefined>;
}

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

interface WatchedLog {
  source: string;
  file: string;
  patterns: readonly CrashPattern[];
  offset: number;
  partial: string;
}

const MAX_PROBLEMS = 50;
const MAX_READ = 8 * 1024 * 1024;

/** Describes an exit as plane-health reports it ("exited with code 1", "exited on SIGSEGV"). */
export function describeExit(x: ExitStatus | undefined): string {
  if (!x) return 'exited';
  if (x.signal) return `exited on ${x.signal}`;
  if (x.code !== null && x.code > 128 && x.code < 160) return `exited with code ${x.code} (signal ${x.code - 128})`;
  return `exited with code ${x.code}`;
}

/** Compiles a plane file's `crashPatterns` (strings, regex syntax) as crash patterns. */
export function userCrashPatterns(patterns: readonly string[], kind: CrashPattern['kind'] = 'crash'): CrashPattern[] {
  return patterns.map((p) => ({ re: new RegExp(p), kind }));
}

/** The first problem as one line, for a failure reason ("nginx error.log: ... exited on signal 11"). */
export function healthReason(h: PlaneHealth): string | undefined {
  const p = h.problems[0];
  if (!p) return undefined;
  const more = h.problems.length > 1 ? ` (+${h.problems.length - 1} more)` : '';
  return `data plane ${p.kind === 'exited' ? 'process' : p.kind} — ${p.source}: ${p.line.trim()}${more}`;
}

export class PlaneHealthMonitor {
  readonly name: string;
  private readonly procs: Array<{ source: string; proc: WatchedProcess }> = [];
  private readonly logs: WatchedLog[] = [];
  private readonly extraPids: Array<() => number[]> = [];
  private readonly problems: PlaneProblem[] = [];
  private readonly reportedExit = new Set<string>();
  private stoppingNow = false;

  constructor(name: string) {
    this.name = name;
  }

  /** A process eppkit started and expects to keep running until stop(). */
  withProcess(source: string, proc: WatchedProcess): this {
    this.procs.push({ source, proc });
    // Recorded when it happens: a plane that dies and is then stopped by the runner still counts.
    void proc.exited?.then((x) => this.onExit(source, proc, x));
    return this;
  }

  private onExit(source: string, proc: WatchedProcess, x: ExitStatus | undefined): void {
    // An exit after stop() was asked for is ours; one before is the plane's.
    if (this.stoppingNow || this.reportedExit.has(source)) return;
    this.reportedExit.add(source);
    const pid = proc.hostPid ?? proc.pid;
    this.add({ kind: 'exited', source, line: `${source}${pid ? ` (pid ${pid})` : ''} ${describeExit(x)} while the test was running`, ...(pid ? { pid } : {}) });
  }

  /**
   * A log file to scan for `patterns`, from `fromOffset` (default: its size now, so what an
   * earlier attempt or an earlier run wrote is not counted). The file may not exist yet.
   */
  withLogFile(source: string, file: string, patterns: readonly CrashPattern[], fromOffset?: number): this {
    const offset = fromOffset ?? (existsSync(file) ? fileSize(file) : 0);
    this.logs.push({ source, file, patterns, offset, partial: '' });
    return this;
  }

  /**
   * A process eppkit did not start but must stay up (an external plane's pid file): its pid is
   * read now and at each health(); when that process is gone or the pid changed (restarted),
   * it is reported as exited (no exit code: it is not our child). Its tree counts in pids().
   */
  withForeignProcess(source: string, pid: () => number | undefined): this {
    const first = safe(pid);
    if (first === undefined) return this;
    this.foreign.push({ source, first, pid });
    this.extraPids.push(() => {
      const now = safe(pid);
      return now === undefined ? [] : [now];
    });
    return this;
  }

  private readonly foreign: Array<{ source: string; first: number; pid: () => number | undefined }> = [];

  /** More pids of the plane that no watched handle owns (a plane file's pid file, a container's). */
  withPids(pids: () => number[]): this {
    this.extraPids.push(pids);
    return this;
  }

  /** Runs the plane's own stop; exits from here on are ours, not the plane's problem. */
  async stopping<T>(stop: () => Promise<T>): Promise<T> {
    this.stoppingNow = true;
    return stop();
  }

  /** Every process of the plane now: each watched process and its descendants, plus extra pids. */
  pids(): number[] {
    const out = new Set<number>();
    for (const { proc } of this.procs) {
      const root = proc.hostPid ?? proc.pid;
      if (root !== undefined && proc.running) for (const p of processTree(root)) out.add(p);
    }
    for (const f of this.extraPids) {
      try {
        for (const p of f()) for (const q of processTree(p)) out.add(q);
      } catch {
        // a pid source that cannot answer now adds nothing
      }
    }
    return [...out];
  }

  /** Scans what was logged since the last call and the process handles; cumulative. Never throws. */
  health(): PlaneHealth {
    for (const { source, proc } of this.procs) if (!proc.running) this.onExit(source, proc, proc.exitStatus);
    for (const f of this.foreign) {
      if (this.stoppingNow || this.reportedExit.has(f.source)) continue;
      const now = safe(f.pid);
      if (now === f.first && (sampleProcess(now)?.state ?? 'Z') !== 'Z') continue;
      this.reportedExit.add(f.source);
      const what = now !== undefined && now !== f.first ? `was restarted (pid ${f.first} is now ${now})` : `(pid ${f.first}) is gone`;
      this.add({ kind: 'exited', source: f.source, line: `${f.source} ${what} while the test was running`, pid: f.first });
    }
    for (const log of this.logs) this.scan(log);
    return { ok: this.problems.length === 0, problems: [...this.problems] };
  }

  private add(p: PlaneProblem): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(p);
  }

  private scan(log: WatchedLog): void {
    if (!existsSync(log.file)) return;
    let fd: number | undefined;
    try {
      fd = openSync(log.file, 'r');
      const size = fstatSync(fd).size;
      if (size < log.offset) log.offset = 0; // truncated or rotated: start over
      if (size === log.offset) return;
      // A bench can write hundreds of MB between two checks: read at most the last MAX_READ bytes.
      if (size - log.offset > MAX_READ) {
        log.offset = size - MAX_READ;
        log.partial = '';
      }
      const len = size - log.offset;
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, log.offset);
      log.offset = size;
      const text = log.partial + buf.toString('utf8');
      const lines = text.split('\n');
      log.partial = lines.pop() ?? '';
      for (const line of lines) {
        for (const p of log.patterns) {
          if (p.re.test(line)) {
            this.add({ kind: p.kind, source: log.source, line: line.length > 500 ? `${line.slice(0, 500)}…` : line });
            break;
          }
        }
      }
    } catch {
      // unreadable now: try again next time
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** A pid read from a pid file (nginx.pid and the like), undefined when absent or not a number. */
export function readPidFile(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function fileSize(file: string): number {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    return fstatSync(fd).size;
  } catch {
    return 0;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
