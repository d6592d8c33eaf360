// eppkit picks the plane's ports; one can be taken by another process before the plane binds
// it. That race is eppkit's, so the plane is started again on new ports, and the failed
// attempt's log lines (its bind error) do not count against the plane's health.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eppkit, NODE_PROXY_COMMAND, notPassed, ONE_REQUEST_SCENARIO, results } from './plane-kit.ts';

describe('a port taken before the plane binds it', () => {
  it('starts the plane again on new ports; the failed attempt is noted, not judged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-port-taken-'));
    writeFileSync(join(dir, 'one.yaml'), ONE_REQUEST_SCENARIO);
    // The first start fails as a plane does when its port is gone; the marker sits outside
    // {{dir}}, which eppkit empties before each attempt.
    writeFileSync(
      join(dir, 'plane.yaml'),
      `name: unlucky-node
kind: node
features: [body-buffered, fail-close]
crashPatterns: ["^bind\\\\(\\\\) to "]
start:
  command: >-
    if [ ! -e "${dir}/tried" ]; then touch "${dir}/tried"; echo "bind() to {{listen}} failed (98: Address already in use)" >&2; exit 1; fi;
    ${NODE_PROXY_COMMAND}
  ready: { log: { matches: "listening on http" } }
  readyTimeoutMs: 60000
`,
    );
    const r = eppkit(['run', 'one.yaml', '--plane', 'plane.yaml', '--report-dir', 'out'], dir, 300_000);
    expect(notPassed(results(join(dir, 'out'))), r.stdout.slice(-2000)).toEqual([]);
    expect(r.code).toBe(0);
  }, 320_000);
});
