import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { diffSamples, footprint, processTree, sampleProcess, sampleProcesses } from './proc-sampler.ts';

describe('proc-sampler', () => {
  it('samples this process: CPU, RSS, fds, name', () => {
    const s = sampleProcess(process.pid);
    expect(s).toBeDefined();
    expect(s?.pid).toBe(process.pid);
    expect(s?.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(s?.fds).toBeGreaterThan(2);
    expect(s?.cpuUs).toBeGreaterThan(0);
    expect(s?.ppid).toBe(process.ppid);
  });

  it('has no sample for a pid that does not exist', () => {
    expect(sampleProcess(0)).toBeUndefined();
    expect(sampleProcess(2 ** 22 + 7)).toBeUndefined();
  });

  it('finds a child in the process tree and counts CPU it burns', async () => {
    const child = spawn(process.execPath, ['-e', 'while (process.cpuUsage().user < 150000); setInterval(()=>{}, 1000)'], { stdio: 'ignore' });
    try {
      const pid = child.pid as number;
      const before = sampleProcesses([pid]);
      expect(processTree(process.pid)).toContain(pid);
      // Wait until it has burned its busy loop (CPU time only grows).
      let after = before;
      while ((after[0]?.cpuUs ?? 0) < 150_000) {
        await new Promise((r) => setTimeout(r, 50));
        after = sampleProcesses([pid]);
      }
      const d = diffSamples(before, after);
      expect(d[0]?.pid).toBe(pid);
      expect(d[0]?.cpuUs).toBeGreaterThan(0);
      expect(footprint(after).processes).toBe(1);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });

  it('diffSamples counts a process that appeared from zero and never goes negative', () => {
    const a = { pid: 1, ppid: 0, comm: 'x', state: 'S', cpuUs: 500, rssBytes: 10, fds: 3, at: 0 };
    const b = { ...a, cpuUs: 400 };
    const c = { ...a, pid: 2, cpuUs: 70 };
    expect(diffSamples([a], [b, c])).toEqual([
      { pid: 1, comm: 'x', cpuUs: 0, rssBytesBefore: 10, rssBytesAfter: 10, fdsBefore: 3, fdsAfter: 3 },
      { pid: 2, comm: 'x', cpuUs: 70, rssBytesBefore: 0, rssBytesAfter: 10, fdsBefore: undefined, fdsAfter: 3 },
    ]);
  });
});
