import { describe, expect, it } from 'vitest';
import { BENCH_SERVER_NODE_FLAGS, FLOOR_LABEL, benchServers } from './mock-epp-native-load.ts';

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
});
