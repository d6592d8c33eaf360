import { describe, expect, it } from 'vitest';
import { BENCH_SERVER_NODE_FLAGS, benchServers } from './mock-epp-native-load.ts';

describe('eppkit bench mock-epp servers (compiled client)', () => {
  it('starts the do-nothing server and the mock under the same Node flags, as Node options (before the script)', () => {
    const [base, mock] = benchServers({ baseline: true });
    expect(BENCH_SERVER_NODE_FLAGS).toContain('--no-allocation-site-pretenuring');
    expect(base?.label).toBe('do-nothing h2 server');
    expect(mock?.label).toBe('mock-epp');
    for (const s of [base!, mock!]) {
      expect(s.command).toBe(process.execPath);
      // Node reads its own options only before the script; after it they are the script's.
      expect(s.args.slice(0, BENCH_SERVER_NODE_FLAGS.length)).toEqual([...BENCH_SERVER_NODE_FLAGS]);
      expect(s.args[BENCH_SERVER_NODE_FLAGS.length]).toMatch(/\.(ts|js)$/);
    }
    expect(mock!.args).toContain('mock-epp');
  });

  it('runs the mock alone without --baseline', () => {
    expect(benchServers({ baseline: false }).map((s) => s.label)).toEqual(['mock-epp']);
  });
});
