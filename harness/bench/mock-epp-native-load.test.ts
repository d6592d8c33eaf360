import { describe, expect, it, vi } from 'vitest';
import { BENCH_SERVER_NODE_FLAGS, FLOOR_LABEL, benchServers, benchSteps, cpuAfter, roundRatios, serverCpuPerStream } from './mock-epp-native-load.ts';

describe('eppkit bench mock-epp servers (compiled client)', () => {
  it('starts the do-nothing server and the mock under the same Node flags, as Node options (before the script)', () => {
    const servers = benchServers({ baseline: true }, null);
    expect(servers.map((s) => s.label)).toEqual(['do-nothing h2 server', 'mock-epp']);
    expect(BENCH_SERVER_NODE_FLAGS).toContain('--no-allocation-site-pretenuring');
    for (const s of servers) {
      expect(s.command).toBe(process.execPath);
      // Node reads its own options only before the script; after it they are the script's.
      expect(s.args.slice(0, BENCH_SERVER_NODE_FLAGS.length)).toEqual([...BENCH_SERVER_NODE_FLAGS]);
      expect(s.args[BENCH_SERVER_NODE_FLAGS.length]).toMatch(/\.(ts|js)$/);
    }
    expect(servers[1]!.args).toContain('mock-epp');
  });

  it('measures the latency floor first with the compiled bench EPP when it is built, on the same endpoints', () => {
    const servers = benchServers({ baseline: true }, '/x/eppkit-bench-epp');
    expect(servers.map((s) => s.label)).toEqual([FLOOR_LABEL, 'do-nothing h2 server', 'mock-epp']);
    const [floor, , mock] = servers;
    expect(floor!.command).toBe('/x/eppkit-bench-epp');
    const endpoints = (args: string[]) => args[args.indexOf('--endpoints') + 1];
    expect(endpoints(floor!.args)).toBe(endpoints(mock!.args));
    expect(floor!.args).toEqual(expect.arrayContaining(['--listen', '127.0.0.1:0']));
  });

  it('runs the mock alone without --baseline', () => {
    expect(benchServers({ baseline: false }, '/x/eppkit-bench-epp').map((s) => s.label)).toEqual(['mock-epp']);
  });

  it('alternates the do-nothing server and the mock for --rounds, the floor once first', () => {
    const steps = benchSteps(benchServers({ baseline: true }, '/x/eppkit-bench-epp'), 3);
    expect(steps.map((s) => s.target)).toEqual([FLOOR_LABEL, 'do-nothing h2 server #1', 'mock-epp #1', 'do-nothing h2 server #2', 'mock-epp #2', 'do-nothing h2 server #3', 'mock-epp #3']);
    expect(benchSteps(benchServers({ baseline: true }, null), 1).map((s) => s.target)).toEqual(['do-nothing h2 server', 'mock-epp']);
  });

  it("takes the median of the rounds' ratios, each round against its own do-nothing run", () => {
    const r = roundRatios([
      { round: 1, label: 'do-nothing h2 server', us: 80 },
      { round: 1, label: 'mock-epp', us: 112 },
      { round: 2, label: 'do-nothing h2 server', us: 100 },
      { round: 2, label: 'mock-epp', us: 120 },
      { round: 3, label: 'do-nothing h2 server', us: 75 },
      { round: 3, label: 'mock-epp', us: 93.75 },
    ]);
    expect(r).toEqual({ ratios: [1.4, 1.2, 1.25], median: 1.25 });
    expect(roundRatios([{ round: 1, label: 'mock-epp', us: 90 }])).toBeUndefined();
    expect(roundRatios([{ round: 1, label: 'do-nothing h2 server', us: 50 }, { round: 1, label: 'mock-epp', us: 65 }, { round: 2, label: 'do-nothing h2 server', us: 50 }, { round: 2, label: 'mock-epp', us: 60 }])?.median).toBe(1.25);
  });

  it('counts server CPU per stream after the warm-up, over the measured streams, and keeps the whole run beside it', () => {
    // 12 s at 5,000/s: 60,000 streams, 50,000 after a 2 s warm-up that cost 1,400 ms of CPU.
    const c = serverCpuPerStream({ cpuStart: 100, cpuAtWarmupEnd: 1_500, cpuEnd: 6_100, streams: 60_000, measuredStreams: 50_000 });
    expect(c).toEqual({ us: 92, measuredMs: 4_600, wholeRunUs: 100 });
    // No reading at the warm-up's end (the client ended first): the whole run, said as such.
    expect(serverCpuPerStream({ cpuStart: 0, cpuAtWarmupEnd: undefined, cpuEnd: 6_000, streams: 60_000, measuredStreams: 50_000 })).toEqual({ us: 100, measuredMs: 6_000, wholeRunUs: 100 });
    expect(serverCpuPerStream({ cpuStart: 0, cpuAtWarmupEnd: 10, cpuEnd: 20, streams: 0, measuredStreams: 0 }).us).toBe(0);
  });

  it('reads the CPU once the warm-up has passed, not before, and not at all when cancelled first', () => {
    vi.useFakeTimers();
    try {
      const reads: number[] = [];
      const a = cpuAfter(42, 2_000, (pid) => (reads.push(pid), pid * 10));
      vi.advanceTimersByTime(1_999);
      expect(a.value()).toBeUndefined();
      vi.advanceTimersByTime(1);
      expect(a.value()).toBe(420);
      vi.advanceTimersByTime(10_000);
      expect(reads).toEqual([42]);
      const b = cpuAfter(42, 5, () => 1);
      b.cancel();
      vi.advanceTimersByTime(100);
      expect(b.value()).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});
