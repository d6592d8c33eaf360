// CPU time the processes of a data plane used over a measuring window, from /proc: the
// descendants of this process taken as candidates before the load starts (so load workers are
// never among them), except the ones named as not the plane's (backend, mock EPP, a BBR
// server) and their children; counted when they lived through the whole window. Linux only;
// elsewhere (or for container planes) it measures nothing.
// A small stand-in until per-process CPU accounting for every target lands in bench.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let hz: number | undefined;
function ticks(): number {
  if (hz === undefined) {
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      hz = 100;
    }
  }
  return hz;
}

interface Stat {
  ppid: number;
  comm: string;
  cpuUs: number;
}

function stat(pid: number): Stat | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = t.lastIndexOf(')');
    const f = t.slice(close + 2).split(' ');
    return { ppid: Number(f[1]), comm: t.slice(t.indexOf('(') + 1, close), cpuUs: ((Number(f[11]) + Number(f[12])) * 1e6) / ticks() };
  } catch {
    return undefined;
  }
}

/** pid -> its stat, for every descendant of `root`. */
function descendants(root: number): Map<number, Stat> {
  const all = new Map<number, Stat>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return all;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const s = stat(Number(n));
    if (s) all.set(Number(n), s);
  }
  const out = new Map<number, Stat>();
  const walk = (p: number): void => {
    for (const [pid, s] of all) {
      if (s.ppid === p && !out.has(pid)) {
        out.set(pid, s);
        walk(pid);
      }
    }
  };
  walk(root);
  return out;
}

export interface PlaneCpuResult {
  /** CPU µs of the counted processes over the window. */
  us: number;
  /** What was counted, `comm(pid)`. */
  processes: string[];
}

/** The plane's candidate processes, taken before the load starts. */
export class PlaneCpuCandidates {
  readonly #pids: Set<number>;

  private constructor(pids: Set<number>) {
    this.#pids = pids;
  }

  static take(exclude: Iterable<number | undefined>): PlaneCpuCandidates {
    const ex = new Set([...exclude].filter((p): p is number => p !== undefined));
    const all = descendants(process.pid);
    // Walk order is parents first: an excluded process's children (a wrapper's real process) go too.
    for (const [pid, s] of all) if (ex.has(s.ppid)) ex.add(pid);
    return new PlaneCpuCandidates(new Set([...all.keys()].filter((p) => !ex.has(p))));
  }

  /** Starts the measured window now. */
  open(): PlaneCpuWindow {
    return new PlaneCpuWindow(this.#pids);
  }
}

export class PlaneCpuWindow {
  readonly #start = new Map<number, Stat>();

  constructor(pids: Iterable<number>) {
    for (const pid of pids) {
      const s = stat(pid);
      if (s) this.#start.set(pid, s);
    }
  }

  close(): PlaneCpuResult {
    let us = 0;
    const processes: string[] = [];
    for (const [pid, s0] of this.#start) {
      const s1 = stat(pid);
      if (!s1 || s1.comm !== s0.comm) continue;
      us += s1.cpuUs - s0.cpuUs;
      processes.push(`${s1.comm}(${pid})`);
    }
    return { us: Math.round(us), processes };
  }
}
