// Reads what Linux's /proc says about a process: CPU time (user + system, µs), resident set
// size, open file descriptors, state, parent and name; and the descendants of a pid. Used by
// plane health (which processes belong to a data plane), bench (CPU µs per request, per
// process) and the leak checks (RSS and fds before and after). Never throws: a process that
// is gone (or unreadable) simply has no sample.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcSample {
  pid: number;
  ppid: number;
  /** The kernel's short name (comm), e.g. "nginx", "envoy", "node". */
  comm: string;
  /** R, S, D, Z, T, ... (Z = exited, not reaped yet). */
  state: string;
  /** User + system CPU time since the process started, microseconds. */
  cpuUs: number;
  rssBytes: number;
  /** Open file descriptors; undefined when /proc/<pid>/fd is not readable. */
  fds: number | undefined;
  /** When the sample was taken (performance.now() ms). */
  at: number;
}

let ticksPerSecond: number | undefined;

/** USER_HZ (clock ticks in /proc/<pid>/stat); 100 on every mainstream Linux build. */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** One process, or undefined when it does not exist (any more). */
export function sampleProcess(pid: number): ProcSample | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  // comm is in parentheses and may itself contain spaces or ')': split at the last ')'.
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const f = stat.slice(close + 2).split(' ');
  // Fields after comm, 0-based: state=0, ppid=1, utime=11, stime=12.
  const hz = clockTicks();
  const cpuUs = Math.round(((Number(f[11]) + Number(f[12])) * 1e6) / hz);
  const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
  let fds: number | undefined;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    fds = undefined;
  }
  return { pid, ppid: Number(f[1]), comm, state: f[0] ?? '?', cpuUs, rssBytes: rssKb * 1024, fds, at: performance.now() };
}

/**
 * A readable name for a process: nginx's own title ("nginx: worker process"), the eppkit
 * subcommand of a Node process ("node mock-epp"), else the executable's name; comm as a fallback
 * (Node names its main thread "MainThread", which says nothing).
 */
export function processLabel(pid: number): string | undefined {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
  const first = argv[0] ?? '';
  if (first.startsWith('nginx: ')) return first.replace(/^nginx: (\w+) process.*/, 'nginx $1');
  const exe = first.split('/').pop() ?? first;
  if (exe === 'node' || exe.startsWith('node')) {
    const script = argv.slice(1).find((a) => !a.startsWith('-'));
    const scriptName = script?.split('/').pop() ?? '';
    if (scriptName === 'eppkit.js') {
      const sub = argv.slice(argv.indexOf(script!) + 1).find((a) => !a.startsWith('-'));
      const shim = argv.includes('--shim') ? ' --shim' : '';
      return `node ${sub ?? 'eppkit'}${shim}`;
    }
    return `node ${scriptName.replace(/\.(ts|js)$/, '') || ''}`.trim();
  }
  return exe || undefined;
}

/** Direct children of a process (every thread's children file), [] when it is gone. */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) out.add(Number(c));
    } catch {
      // thread gone meanwhile
    }
  }
  return [...out];
}

/** `pid` and all its descendants that exist now (breadth first, `pid` first). */
export function processTree(pid: number): number[] {
  if (sampleProcess(pid) === undefined) return [];
  const seen: number[] = [pid];
  for (let i = 0; i < seen.length; i++) {
    for (const c of childPids(seen[i] as number)) if (!seen.includes(c)) seen.push(c);
  }
  return seen;
}

/** Samples of the given pids (the gone ones left out). */
export function sampleProcesses(pids: readonly number[]): ProcSample[] {
  return pids.map(sampleProcess).filter((s): s is ProcSample => s !== undefined);
}

export interface ProcDelta {
  pid: number;
  comm: string;
  /** CPU time used between the two samples, µs. */
  cpuUs: number;
  rssBytesBefore: number;
  rssBytesAfter: number;
  fdsBefore: number | undefined;
  fdsAfter: number | undefined;
}

/**
 * What each process did between two sample sets. A pid only in `after` (a worker started
 * meanwhile) counts from zero; one only in `before` (exited) is left out: its CPU is lost
 * with it, which is why a crash is reported by plane health, not here.
 */
export function diffSamples(before: readonly ProcSample[], after: readonly ProcSample[]): ProcDelta[] {
  const b = new Map(before.map((s) => [s.pid, s]));
  return after.map((a) => {
    const was = b.get(a.pid);
    return {
      pid: a.pid,
      comm: a.comm,
      cpuUs: Math.max(0, a.cpuUs - (was?.cpuUs ?? 0)),
      rssBytesBefore: was?.rssBytes ?? 0,
      rssBytesAfter: a.rssBytes,
      fdsBefore: was?.fds,
      fdsAfter: a.fds,
    };
  });
}

/** Sum of RSS and of fds over a sample set (a plane's footprint). */
export function footprint(samples: readonly ProcSample[]): { rssBytes: number; fds: number; processes: number } {
  let rssBytes = 0;
  let fds = 0;
  for (const s of samples) {
    rssBytes += s.rssBytes;
    fds += s.fds ?? 0;
  }
  return { rssBytes, fds, processes: samples.length };
}
