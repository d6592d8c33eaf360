// A plane that truthfully claims headers only (body-none) runs every scenario that does not
// need the body at the EPP — not 1 of them. Here the plane is eppkit's node-proxy started
// through a plane file with --body-mode {{bodyMode}} and only body-none claimed.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeProxyDriver } from '../../harness/data-planes/node-proxy-driver.ts';
import { requiredFeatures } from '../../harness/runner/run-scenario.ts';
import { loadScenarios } from '../../harness/scenarios/load-scenarios.ts';
import { BIN, eppkit, notPassed, results } from './plane-kit.ts';

describe('a headers-only plane file', () => {
  it('runs every scenario that does not need the body at the EPP', () => {
    // Without the body modes that carry it; subset-hint, bbr and tls need node-proxy's config
    // file, which this small plane file does not render.
    const features = [...nodeProxyDriver.features].filter((f) => !['body-buffered', 'body-streamed', 'subset-hint', 'bbr', 'tls'].includes(f));
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-headers-only-'));
    writeFileSync(
      join(dir, 'headers-only.yaml'),
      `name: headers-only
kind: node
features: [${features.join(', ')}]
start:
  # A shell command: exec so that the stop signal reaches node itself.
  command: >-
    exec "${process.execPath}" "${BIN}" node-proxy --listen {{listen}} --epp {{epp}} --body-mode {{bodyMode}}
    --timeout-ms {{timeoutMs}} --failure-mode {{failureMode}}
    {{#pool.any}}--fallback {{pool}}{{/pool.any}} {{#allow.any}}--allow {{allow}}{{/allow.any}}
    {{#responseProcessing}}--response-processing{{/responseProcessing}}
  ready: { log: { matches: "listening on http" } }
  readyTimeoutMs: 60000
`,
    );
    const r = eppkit(['run', '--plane', 'headers-only.yaml', '--report-dir', 'out'], dir);
    const rs = results(join(dir, 'out'));
    const all = loadScenarios([]);
    const expected = all.filter((l) => requiredFeatures(l.scenario).every((f) => features.includes(f))).map((l) => l.scenario.name).sort();
    const ran = rs.scenarios.filter((s) => s.status !== 'skipped').map((s) => s.name).sort();
    expect(ran).toEqual(expected);
    expect(notPassed(rs).filter((x) => x.startsWith('failed')), r.stdout.slice(-3000)).toEqual([]);
    // Far more than 1: everything that never looks at the body at the EPP (20 of 40 today).
    expect(ran.length).toBeGreaterThanOrEqual(15);
    for (const s of rs.scenarios.filter((x) => x.status === 'skipped')) expect(s.reason).toMatch(/does not support: /);
    expect(r.stdout).toMatch(new RegExp(`headers-only: ran ${ran.length} of ${all.length} scenarios; \\d+ skipped because the plane lacks body-buffered`));
    expect(r.code).toBe(0);
  }, 900_000);
});
