// Bad plane files as users write them: an unknown feature or a template variable that does not
// exist stops `eppkit run` with exit 2 naming the file, the line and the key; a start command
// that exits, or a plane that never becomes ready, fails the scenario with a message naming the
// file, the key and what to do. No stack traces.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eppkit, results } from './plane-kit.ts';

const SCENARIO = `name: plain-routing
description: one request routed by the EPP
setup:
  backends:
    - name: pod-a
steps:
  - request: { method: GET, path: /v1/models }
    expect: { status: 200, backend: pod-a }
`;

describe('bad plane files', () => {
  it('exit 2 for an unknown feature and a missing template variable, naming file, line and key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bad-plane-'));
    writeFileSync(join(dir, 'conf.tpl'), 'listen {{listen}};\ntimeout {{timeout}};\n');
    writeFileSync(join(dir, 'typo.yaml'), 'name: typo\nfeatures: [body-bufered]\nstart: { command: "exec true" }\n');
    writeFileSync(join(dir, 'tpl.yaml'), 'name: tpl\nfeatures: [body-buffered]\nstart:\n  command: "exec true"\n  templates: [{ from: conf.tpl, to: a.conf }]\n');
    writeFileSync(join(dir, 's.yaml'), SCENARIO);
    let r = eppkit(['run', 's.yaml', '--plane', 'typo.yaml'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EPPKIT_PLANE_INVALID: invalid plane file typo.yaml');
    expect(r.stderr).toMatch(/line 2, features\[0\]: unknown feature; known: /);
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/);
    r = eppkit(['run', 's.yaml', '--plane', 'tpl.yaml'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line 5, start\.templates\[0\]\.from: conf\.tpl line 2: \{\{timeout\}\} is not a variable/);
  }, 60_000);

  it('a start command that exits and a plane that never gets ready fail the scenario, saying which key and what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bad-plane-'));
    writeFileSync(join(dir, 's.yaml'), SCENARIO);
    writeFileSync(join(dir, 'exits.yaml'), 'name: exits\nfeatures: [body-buffered]\nstart:\n  command: "echo cannot read my config >&2; exit 3"\n');
    writeFileSync(join(dir, 'never.yaml'), 'name: never-ready\nfeatures: [body-buffered]\nstart:\n  command: ["sleep", "30"]\n  readyTimeoutMs: 1500\n');
    const r = eppkit(['run', 's.yaml', '--plane', 'exits.yaml', '--plane', 'never.yaml', '--report-dir', 'out'], dir, 120_000);
    expect(r.code).toBe(1);
    const rs = results(join(dir, 'out'));
    const exits = rs.scenarios.find((s) => s.dataPlane === 'exits');
    expect(exits?.status).toBe('failed');
    expect(exits?.reason).toContain('exits.yaml start.command exited (code 3) before it was ready: run it by hand in');
    expect(exits?.failure?.mismatches[0]?.received).toContain('cannot read my config');
    const never = rs.scenarios.find((s) => s.dataPlane === 'never-ready');
    expect(never?.status).toBe('failed');
    expect(never?.reason).toMatch(/never\.yaml start\.ready: not ready within 1500 ms \(waited for a TCP connect to 127\.0\.0\.1:\d+\); make the plane listen on \{\{listen\}\}/);
  }, 150_000);
});
