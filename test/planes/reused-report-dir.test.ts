// A report directory used twice: the second run must judge the plane by its own logs only. A
// crash line a previous run left in the scenario's log directory (here in the plane's
// stdout+stderr file, which the plane-file driver appends to) must not fail a healthy plane.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eppkit, NODE_PROXY_COMMAND, notPassed, ONE_REQUEST_SCENARIO, results } from './plane-kit.ts';

describe('a reused report directory', () => {
  it('starts each scenario with an empty log directory (old crash lines are not this run)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-reused-'));
    writeFileSync(join(dir, 'one.yaml'), ONE_REQUEST_SCENARIO);
    writeFileSync(
      join(dir, 'plane.yaml'),
      `name: tiny-node
kind: node
features: [body-buffered, fail-close]
crashPatterns: ["^BOOM "]
start:
  command: >-
    ${NODE_PROXY_COMMAND}
  ready: { log: { matches: "listening on http" } }
  readyTimeoutMs: 60000
`,
    );
    // What an earlier run of this scenario on this plane left behind.
    const stale = join(dir, 'out', 'logs', 'one-request--tiny-node', 'plane');
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'plane.log'), 'BOOM the previous run crashed here\n');
    const r = eppkit(['run', 'one.yaml', '--plane', 'plane.yaml', '--report-dir', 'out'], dir, 300_000);
    expect(notPassed(results(join(dir, 'out'))), r.stdout.slice(-2000)).toEqual([]);
    expect(r.code).toBe(0);
  }, 320_000);
});
