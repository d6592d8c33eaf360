// CPU time the processes of a data plane used over a measuring window, from /proc: every
// descendant of this process that lived through the whole window, except the ones named as
// not the plane's (backend, mock EPP, a BBR server). Load workers start inside the window, so
// they are never counted. Linux only; elsewhere (or for container planes) it measures nothing.
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

export class PlaneCpuWindow {
  readonly #start: Map<number, Stat>;
  readonly #exclude: Set<number>;

  private constructor(exclude: Iterable<number | undefined>) {
    this.#exclude = new Set([...exclude].filter((p): p is number => p !== undefined));
    // An excluded process's own children (a shell wrapper's) are not the plane's either.
    this.#start = descendants(process.pid);
    for (const [pid, s] of [...this.#start]) if (this.#exclude.has(s.ppid)) this.#exclude.add(pid);
  }

  static open(exclude: Iterable<number | undefined>): PlaneCpuWindow {
    return new PlaneCpuWindow(exclude);
  }

  close(): PlaneCpuResult {
    const end = descendants(process.pid);
    let us = 0;
    const processes: string[] = [];
    for (const [pid, s0] of this.#start) {
      if (this.#exclude.has(pid)) continue;
      const s1 = end.get(pid);
      if (!s1) continue;
      us += s1.cpuUs - s0.cpuUs;
      processes.push(`${s1.comm}(${pid})`);
    }
    return { us: Math.round(us), processes };
  }
}
