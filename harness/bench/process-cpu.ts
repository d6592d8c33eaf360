// Where a bench target's CPU went: every process of the target (each nginx worker, Envoy,
// node-proxy, the NJS shim, the EPP, the backend, each load worker) sampled from /proc at the
// start and the end of the measured window, as CPU µs per completed request, share of a core,
// RSS and open fds. On a shared 2-core machine req/s moves with the neighbours' load; CPU µs per
// request of the data plane's own processes barely does, so it is the figure to compare planes.
import { availableParallelism } from 'node:os';
import { processLabel, sampleProcesses, type ProcSample } from '../../core/proc-sampler.ts';

export type ProcessRole = 'data plane' | 'EPP' | 'backend' | 'load worker';

export interface ProcessCpu {
  role: ProcessRole;
  /** The kernel's name for it (nginx, envoy, node, ...), with the pid. */
  name: string;
  pid: number;
  /** CPU used in the window, µs. */
  cpuUs: number;
  /** cpuUs / completed requests of the window; null when none completed. */
  usPerRequest: number | null;
  /** Fraction of one core over the window (1 = a whole core). */
  coreShare: number;
  rssMiB: number;
  fds?: number;
}

export interface CpuAttribution {
  windowMs: number;
  requests: number;
  processes: ProcessCpu[];
  /** Sum over the data plane's own processes: the headline for comparing planes. */
  dataPlaneUsPerRequest: number | null;
  /** The process nearest to a full core, as "nginx pid 123 (data plane) at 97 % of a core". */
  bottleneck?: string;
}

export interface ProcessGroup {
  role: ProcessRole;
  pids: () => number[];
}

/** Load workers measure themselves (their own process.cpuUsage over the window). */
export interface SelfMeasured {
  role: ProcessRole;
  pid: number;
  /** Fraction of a core over `elapsedMs`. */
  coreShare: number;
  elapsedMs: number;
  rssBytes?: number;
  /** How the process table names it (default: a Node load worker). */
  name?: string;
}

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

/** A process at or above this share of a core is saturated: it is the limit. */
export const SATURATED_SHARE = 0.9;

/**
 * When the busiest process is not saturated, says what set the rate instead: the bench's own
 * processes filling the cores together (the machine), or nothing of the bench's (latency: EPP
 * delay, arrival rate; or load from outside the bench on a shared machine).
 */
export function limitNote(topShare: number, processes: ReadonlyArray<{ coreShare: number }>, cores = availableParallelism()): string {
  if (topShare >= SATURATED_SHARE) return ': saturated, the limit';
  const used = round(processes.reduce((a, p) => a + p.coreShare, 0), 2);
  return used >= SATURATED_SHARE * cores
    ? `; no process saturated a core, but the bench's processes used ${used} of ${cores} cores: the machine is the limit`
    : `; no process saturated a core and the bench's processes used ${used} of ${cores} cores: latency (EPP delay, arrival rate) or load outside the bench set the rate`;
}

/** Samples the groups now (start of the window); `finish` samples again and attributes. */
export class ProcessCpuSampler {
  private readonly groups: ProcessGroup[];
  private before: Array<{ role: ProcessRole; s: ProcSample }> = [];
  private after: Array<{ role: ProcessRole; s: ProcSample }> = [];
  private startedAt = 0;
  private endedAt = 0;

  constructor(groups: ProcessGroup[]) {
    this.groups = groups;
  }

  private sample(): Array<{ role: ProcessRole; s: ProcSample }> {
    const seen = new Set<number>();
    const out: Array<{ role: ProcessRole; s: ProcSample }> = [];
    for (const g of this.groups) {
      let pids: number[] = [];
      try {
        pids = g.pids();
      } catch {
        pids = [];
      }
      for (const s of sampleProcesses(pids.filter((p) => !seen.has(p)))) {
        seen.add(s.pid);
        out.push({ role: g.role, s });
      }
    }
    return out;
  }

  start(): void {
    this.before = this.sample();
    this.startedAt = performance.now();
  }

  /** End of the window: sample now (call at the window's end, before the load drains). */
  stop(): void {
    this.after = this.sample();
    this.endedAt = performance.now();
  }

  /** The load ended before the window's end (a burst run's last burst): the window ends now. */
  stopIfRunning(): void {
    if (this.startedAt > 0 && this.endedAt === 0) this.stop();
  }

  /** Attributes the window's CPU to `requests` completed requests (plus self-measured processes). */
  attribute(requests: number, self: readonly SelfMeasured[] = []): CpuAttribution {
    const windowMs = Math.max(1, this.endedAt - this.startedAt);
    const was = new Map(this.before.map((b) => [b.s.pid, b.s]));
    const per = (cpuUs: number): number | null => (requests > 0 ? round(cpuUs / requests) : null);
    const processes: ProcessCpu[] = this.after.map(({ role, s }) => {
      // A process born in the window (a respawned worker) counts from zero.
      const cpuUs = Math.max(0, s.cpuUs - (was.get(s.pid)?.cpuUs ?? 0));
      const p: ProcessCpu = { role, name: processLabel(s.pid) ?? s.comm, pid: s.pid, cpuUs, usPerRequest: per(cpuUs), coreShare: round(cpuUs / 1000 / windowMs, 3), rssMiB: round(s.rssBytes / 1048576) };
      if (s.fds !== undefined) p.fds = s.fds;
      return p;
    });
    for (const m of self) {
      const cpuUs = Math.round(m.coreShare * m.elapsedMs * 1000);
      processes.push({ role: m.role, name: m.name ?? 'node load-worker', pid: m.pid, cpuUs, usPerRequest: per(cpuUs), coreShare: round(m.coreShare, 3), rssMiB: round((m.rssBytes ?? 0) / 1048576) });
    }
    const dp = processes.filter((p) => p.role === 'data plane');
    const dpUs = dp.reduce((a, p) => a + p.cpuUs, 0);
    const out: CpuAttribution = {
      windowMs: Math.round(windowMs),
      requests,
      processes,
      dataPlaneUsPerRequest: dp.length > 0 ? per(dpUs) : null,
    };
    const top = [...processes].sort((a, b) => b.coreShare - a.coreShare)[0];
    if (top) out.bottleneck = `${top.name} pid ${top.pid} (${top.role}) at ${Math.round(top.coreShare * 100)} % of a core${limitNote(top.coreShare, processes)}`;
    return out;
  }
}

/** The per-process table rows: role, process, CPU µs/request, % of a core, RSS MiB, fds. */
export function processRows(a: CpuAttribution): string[][] {
  return a.processes.map((p) => [
    p.role,
    `${p.name} ${p.pid}`,
    p.usPerRequest === null ? '—' : String(p.usPerRequest),
    `${Math.round(p.coreShare * 100)}%`,
    String(p.rssMiB),
    p.fds === undefined ? '—' : String(p.fds),
  ]);
}
