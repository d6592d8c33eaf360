// CPU hogs for `eppkit bench --cpu-hog N`: N busy-loop child processes beside the bench, so a
// claim like "loses nothing at a load average of 8" is proved on a loaded machine on purpose,
// not by luck. Each hog is its own process (the kernel shares the cores between them and the
// bench's processes like any other load); they are stopped by PID, never by name. The bench
// pauses them (SIGSTOP) while a target's processes start and resumes them (SIGCONT) for its load
// window: the claim is about serving under load, and a plane's start-up at a fraction of a core
// would only hit the drivers' start timeouts.
import { spawn, type ChildProcess } from 'node:child_process';
import { sampleProcesses } from '../../core/proc-sampler.ts';

export class CpuHogs {
  private readonly children: ChildProcess[] = [];

  /** Starts `n` busy loops (sh, so no runtime start-up cost and nothing to clean up). */
  static start(n: number): CpuHogs {
    const h = new CpuHogs();
    for (let i = 0; i < n; i++) {
      const c = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
      c.on('error', () => undefined);
      h.children.push(c);
    }
    return h;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** SIGSTOP (pause) or SIGCONT (resume) every hog, by PID. */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // Already gone: nothing to pause.
      }
    }
  }

  /** CPU the hogs used so far, in µs (from /proc): proof they competed during a window. */
  cpuUs(): number {
    return sampleProcesses(this.pids).reduce((a, s) => a + s.cpuUs, 0);
  }

  /** SIGKILL each hog by its PID and wait for it to be gone. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return resolve();
            c.once('exit', () => resolve());
            process.kill(c.pid, 'SIGKILL');
          }),
      ),
    );
    this.children.length = 0;
  }
}
