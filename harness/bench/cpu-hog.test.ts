import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CpuHogs } from './cpu-hog.ts';
import { parseBenchOptions } from './bench-options.ts';

describe('CpuHogs', () => {
  it('starts N busy loops and stops exactly those, by PID', async () => {
    const hogs = CpuHogs.start(2);
    const pids = hogs.pids;
    expect(pids).toHaveLength(2);
    for (const p of pids) {
      expect(existsSync(`/proc/${p}`)).toBe(true);
      // A busy loop is runnable, never sleeping on I/O.
      expect(readFileSync(`/proc/${p}/cmdline`, 'utf8')).toContain('while :; do :; done');
    }
    await hogs.stop();
    for (const p of pids) expect(existsSync(`/proc/${p}`)).toBe(false);
    expect(hogs.pids).toEqual([]);
  });
  it('pauses and resumes the hogs by PID, and reads the CPU they used', async () => {
    const hogs = CpuHogs.start(1);
    const pid = hogs.pids[0]!;
    const state = (): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.charAt(0);
    hogs.signal('SIGSTOP');
    await expect.poll(state).toBe('T');
    hogs.signal('SIGCONT');
    await expect.poll(state).not.toBe('T');
    await expect.poll(() => hogs.cpuUs(), { timeout: 10_000 }).toBeGreaterThan(0);
    await hogs.stop();
  });
  it('none asked, none started', async () => {
    const hogs = CpuHogs.start(0);
    expect(hogs.pids).toEqual([]);
    await hogs.stop();
  });
});

describe('burst executor and cpu-hog options', () => {
  it('accepts burst with connections, refuses it with a rate or autocannon', () => {
    expect(parseBenchOptions({ executor: 'burst', connections: '200', cpuHog: '8' })).toMatchObject({ executor: 'burst', connections: 200, cpuHog: 8 });
    const messages = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return JSON.stringify((e as { problems?: unknown }).problems);
      }
      return '';
    };
    expect(messages(() => parseBenchOptions({ executor: 'burst', rate: '100' }))).toMatch(/burst sends --connections requests at once/);
    expect(messages(() => parseBenchOptions({ executor: 'burst', client: 'autocannon' }))).toMatch(/burst runs with eppkit's own HTTP client/);
  });
});

describe('burst executor', () => {
  it('sends --connections requests at once, in whole bursts, each on its own connection', async () => {
    const { createServer } = await import('node:http');
    const { runLoadWorker } = await import('./load-worker.ts');
    // A barrier: no answer until the whole burst of 5 is in, so only concurrent requests pass.
    let waiting: Array<() => void> = [];
    let bursts = 0;
    const server = createServer((_req, res) => {
      waiting.push(() => res.end('ok'));
      if (waiting.length === 5) {
        bursts++;
        for (const answer of waiting) answer();
        waiting = [];
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await runLoadWorker({ url: `http://127.0.0.1:${port}/`, method: 'GET', headers: {}, bodyBytes: 0, executor: 'burst', connections: 5, warmupMs: 0, durationMs: 1500, timeoutMs: 5000 });
      expect(r.errors).toBe(0);
      expect(r.requests).toBeGreaterThanOrEqual(5);
      expect(r.requests % 5).toBe(0);
      expect(bursts).toBe(r.requests / 5);
    } finally {
      server.close();
    }
  });
});
