// `eppkit run` end to end, as a user runs it (child process): the built-in suite passes
// against node-proxy from any directory (exit 0) and writes every report; a wrong expectation
// fails with exit 1 and shows expected against received; a broken scenario file is exit 2
// with file, line and path, and no stack trace.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = new URL('../../bin/eppkit.js', import.meta.url).pathname;

function eppkit(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', CI: '1', ...env }, timeout: 280_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const PASSING = `name: tiny-routing
description: one pinned request
tags: [core]
setup:
  backends:
    - name: pod-a
    - name: pod-b
steps:
  - request:
      method: POST
      path: /v1/completions
      headers: { test-epp-endpoint-selection: "{{pod-b}}" }
      body: { json: { prompt: hi } }
    expect: { status: 200, backend: pod-b, echo: { bodyIntact: true } }
    epp: { headers: { ":path": /v1/completions } }
`;

describe('eppkit run (child process)', () => {
  it('runs the built-in suite with no arguments and passes (exit 0), writing every report', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-run-'));
    const r = eppkit(['run'], cwd);
    expect(r.stderr).not.toMatch(/internal error|at .*\.ts:\d+/);
    expect(r.stdout).toMatch(/\d+ passed, 0 failed/);
    expect(r.code).toBe(0);
    const dir = r.stdout.match(/→ (\S+)/)?.[1] ?? '';
    expect(dir.startsWith(join(cwd, 'reports'))).toBe(true);
    const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as {
      scenarios: Array<{ name: string; dataPlane: string; status: string; durationMs: number; reason?: string }>;
      summary: { passed: number; failed: number; skipped: number };
    };
    expect(results.summary.failed).toBe(0);
    expect(results.summary.passed).toBeGreaterThanOrEqual(20);
    expect(results.scenarios.every((s) => s.dataPlane === 'node-proxy' && typeof s.durationMs === 'number')).toBe(true);
    for (const f of ['junit.xml', 'report.md', 'report.html', 'conformance-node-proxy.yaml']) expect(existsSync(join(dir, f)), f).toBe(true);
  }, 300_000);

  it('fails with exit 1 when an expectation is wrong, showing expected against received', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-run-'));
    writeFileSync(join(cwd, 'wrong.yaml'), PASSING.replace('backend: pod-b', 'backend: pod-a').replace('name: tiny-routing', 'name: wrong-backend'));
    const r = eppkit(['run', 'wrong.yaml', '--report-dir', 'out'], cwd);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('served by backend');
    expect(r.stdout).toMatch(/expected pod-a\s+received pod-b/);
    expect(r.stdout).toContain('EPP journal entry');
    expect(r.stdout).toContain('node-proxy log');
    const results = JSON.parse(readFileSync(join(cwd, 'out', 'results.json'), 'utf8'));
    expect(results.scenarios[0]).toMatchObject({ name: 'wrong-backend', dataPlane: 'node-proxy', status: 'failed' });
    expect(results.scenarios[0].reason).toContain('served by backend');
    expect(results.summary).toEqual({ passed: 0, failed: 1, skipped: 0 });
    const junit = readFileSync(join(cwd, 'out', 'junit.xml'), 'utf8');
    expect(junit).toContain('failures="1"');
  }, 120_000);

  it('passes (exit 0) with a correct file, and skips what the data plane lacks', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-run-'));
    writeFileSync(join(cwd, 'ok.yaml'), PASSING);
    writeFileSync(join(cwd, 'needs-metadata.yaml'), PASSING.replace('name: tiny-routing', 'name: needs-metadata').replace('tags: [core]', 'tags: []\nfeatures: [metadata-endpoint]'));
    const r = eppkit(['run', '.', '--report-dir', 'out'], cwd);
    expect(r.code).toBe(0);
    const results = JSON.parse(readFileSync(join(cwd, 'out', 'results.json'), 'utf8'));
    expect(results.summary).toEqual({ passed: 1, failed: 0, skipped: 1 });
    const skipped = results.scenarios.find((s: { name: string }) => s.name === 'needs-metadata');
    expect(skipped.reason).toContain('metadata-endpoint');
  }, 120_000);

  it('--bail stops starting scenarios after the first failure (the rest are skipped, saying so)', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-run-'));
    const wrong = PASSING.replace('backend: pod-b', 'backend: pod-a');
    writeFileSync(join(cwd, 'a.yaml'), wrong.replace('name: tiny-routing', 'name: a-wrong'));
    writeFileSync(join(cwd, 'b.yaml'), wrong.replace('name: tiny-routing', 'name: b-wrong'));
    const r = eppkit(['run', '.', '--bail', '--concurrency', '1', '--report-dir', 'out'], cwd);
    expect(r.code).toBe(1);
    const results = JSON.parse(readFileSync(join(cwd, 'out', 'results.json'), 'utf8'));
    expect(results.summary).toEqual({ passed: 0, failed: 1, skipped: 1 });
    expect(results.scenarios[1]).toMatchObject({ name: 'b-wrong', status: 'skipped', reason: 'not run: --bail after a failure' });
  }, 120_000);

  it('exits 2 on a broken scenario file, naming the file, the line and the path, without a stack trace', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-run-'));
    const broken = PASSING.replace('expect: { status: 200, backend: pod-b,', 'expect: { status: 999, backend: pod-z,').replace('method: POST', 'method: post');
    writeFileSync(join(cwd, 'broken.yaml'), broken);
    const r = eppkit(['run', 'broken.yaml'], cwd);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EPPKIT_SCENARIO_INVALID');
    expect(r.stderr).toContain('broken.yaml');
    expect(r.stderr).toMatch(/line 10, steps\[0\]\.request\.method/);
    expect(r.stderr).toMatch(/line 14, steps\[0\]\.expect\.status/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(cwd, 'reports'))).toBe(false);
  });

  it('reports every bad plane file and scenario file at once (exit 2), each problem at its own line with the close valid name', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-run-'));
    writeFileSync(join(cwd, 'plane.yaml'), 'name: my-plane\nfeatures: [body-buffered, fail-opn]\nstrat:\n  command: x\n');
    writeFileSync(join(cwd, 'a.yaml'), PASSING.replace('    - name: pod-b\n', '    - name: pod-b\n      latncyMs: 1\n'));
    writeFileSync(join(cwd, 'b.yaml'), `${PASSING.replace('name: tiny-routing', 'name: b')}  - action: stop-ep\n`);
    const r = eppkit(['run', '--plane', 'plane.yaml', 'a.yaml', 'b.yaml'], cwd);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EPPKIT_INPUT_INVALID');
    expect(r.stderr).toMatch(/plane\.yaml\n {4}- line 2, features\[1\]: unknown feature; .*\(did you mean "fail-open"\?\)\n {4}- line 3, strat: unknown key "strat" \(did you mean "start"\?\)/);
    expect(r.stderr).toMatch(/a\.yaml\n {4}- line 8, setup\.backends\[1\]\.latncyMs: unknown key "latncyMs" \(did you mean "latencyMs"\?\)/);
    expect(r.stderr).toMatch(/b\.yaml\n {4}- line 16, steps\[1\]\.action: "stop-ep" is not one of: "stop-epp", .* \(did you mean "stop-epp"\?\)/);
    expect(r.stderr).not.toMatch(/Invalid input|\n\s+at /);
  });

  it('exits 2 on a YAML syntax error and on bad usage', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-run-'));
    writeFileSync(join(cwd, 'syntax.yaml'), 'name: x\nsteps: [\n');
    const a = eppkit(['run', 'syntax.yaml'], cwd);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/syntax\.yaml[\s\S]*line [23]/);
    const b = eppkit(['run', '--data-plane', 'no-such-plane'], cwd);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('unknown data plane "no-such-plane"');
    const c = eppkit(['run', 'missing.yaml'], cwd);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('missing.yaml');
  });

  it('eppkit list names scenarios and data planes with their availability', () => {
    const r = eppkit(['list', '--json'], tmpdir(), { EPPKIT_EXTERNAL_URL: '' });
    expect(r.code).toBe(0);
    const l = JSON.parse(r.stdout) as { scenarios: Array<{ name: string }>; dataPlanes: Array<{ name: string; available: boolean; reason?: string }> };
    expect(l.scenarios.length).toBeGreaterThanOrEqual(20);
    expect(l.dataPlanes.find((d) => d.name === 'node-proxy')?.available).toBe(true);
    const ext = l.dataPlanes.find((d) => d.name === 'external');
    expect(ext?.available).toBe(false);
    expect(ext?.reason).toContain('--external-url');
  });
});
