// Names the bottleneck of a bench target: from the CPU each process used in the measured window
// (core/proc-sampler.ts deltas for the data plane, the EPP and the backend; the load workers'
// own accounting), the process closest to a full core is the limit when it is near one; when
// none is but the cores are full together, the machine is the limit (the processes took turns
// on the same cores, or something outside the bench took them); else none of the bench's
// processes limited the rate (a latency-bound run: EPP delay, fixed arrival rate).

/** A share of one core at or above this is a saturated process. */
export const SATURATED_SHARE = 0.9;

export interface ProcessCpu {
  /** "data plane", "EPP", "backend", "load client", … */
  role: string;
  /** CPU time in the measured window, µs (all the role's processes together). */
  cpuUs: number;
  /** How many OS processes the figure covers. */
  processes: number;
}

export interface CpuBreakdown {
  processes: Array<ProcessCpu & { usPerRequest: number; coreShare: number }>;
  /** All the bench's processes together, in cores. */
  totalCores: number;
  bottleneck: { role: string | null; coreShare: number; verdict: string };
}

const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

export function cpuBreakdown(list: readonly ProcessCpu[], requests: number, windowMs: number, cores: number): CpuBreakdown {
  const windowUs = Math.max(1, windowMs * 1000);
  const processes = list.map((p) => ({ ...p, usPerRequest: requests > 0 ? round(p.cpuUs / requests) : 0, coreShare: round(p.cpuUs / windowUs, 2) }));
  const totalCores = round(processes.reduce((a, p) => a + p.coreShare, 0), 2);
  const top = [...processes].sort((a, b) => b.coreShare - a.coreShare)[0];
  let verdict: string;
  if (!top) verdict = 'no process was measured';
  else if (top.coreShare >= SATURATED_SHARE) verdict = `${top.role} used ${Math.round(top.coreShare * 100)} % of a core: it is the limit`;
  else if (totalCores >= SATURATED_SHARE * cores)
    verdict = `no single process saturated a core, but together they used ${totalCores} of ${cores} cores: the machine is the limit (${top.role} the largest, ${Math.round(top.coreShare * 100)} %)`;
  else verdict = `no process saturated a core (${top.role} the busiest at ${Math.round(top.coreShare * 100)} %) and ${totalCores} of ${cores} cores were used by the bench: the rate was set by latency (EPP delay, arrival rate) or by load outside the bench`;
  return { processes, totalCores, bottleneck: { role: top && (top.coreShare >= SATURATED_SHARE || totalCores >= SATURATED_SHARE * cores) ? top.role : null, coreShare: top?.coreShare ?? 0, verdict } };
}
