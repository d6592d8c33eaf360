// The `external` data plane: a data plane the user already runs, configured for a fixed mock
// EPP port. Here the "user's" data plane is a node-proxy started by hand; `eppkit run
// --data-plane external --external-url ... --external-epp-port ...` starts the mock EPP on that
// port and the backends, runs the scenarios whose route matches, and skips the others saying why.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../core/net.ts';

const BIN = new URL('../../bin/eppkit.js', import.meta.url).pathname;

const SCENARIO = (name: string, route = '', features = 'body-buffered') => `name: ${name}
description: routed by an external data plane
features: [${features}]
setup:
  backends:
    - name: pod-a
    - name: pod-b
  route:
    bodyMode: buffered
${route}steps:
  - request:
      method: POST
      path: /v1/completions
      headers: { test-epp-endpoint-selection: "{{pod-b}}" }
      body: { json: { prompt: external } }
    expect: { status: 200, backend: pod-b, echo: { bodyIntact: true } }
    epp: { bodySha256: request }
`;

let proxy: ChildProcess | undefined;
afterAll(() => {
  proxy?.kill('SIGTERM');
});

describe('external data plane', () => {
  it('runs scenarios against a data plane started by the user, on a fixed mock EPP port', async () => {
    const eppPort = await freePort();
    proxy = spawn(process.execPath, [BIN, 'node-proxy', '--listen', '127.0.0.1:0', '--epp', `127.0.0.1:${eppPort}`, '--timeout-ms', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      proxy?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = out.match(/listening on (http:\/\/\S+)/);
        if (m?.[1]) resolve(m[1]);
      });
      proxy?.once('exit', (c) => reject(new Error(`node-proxy exited ${c}`)));
    });

    const cwd = mkdtempSync(join(tmpdir(), 'eppkit-external-'));
    writeFileSync(join(cwd, 'a.yaml'), SCENARIO('external-routing'));
    writeFileSync(join(cwd, 'b.yaml'), SCENARIO('external-routing-again'));
    writeFileSync(join(cwd, 'c.yaml'), SCENARIO('needs-fail-open', '    failureMode: open\n', 'body-buffered, fail-open'));
    const r = spawnSync(process.execPath, [BIN, 'run', '.', '--data-plane', 'external', '--external-url', url, '--external-epp-port', String(eppPort), '--report-dir', 'out'], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', CI: '1', EPPKIT_EXTERNAL_FEATURES: 'body-buffered,fail-close,fail-open' },
      timeout: 120_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const results = JSON.parse(readFileSync(join(cwd, 'out', 'results.json'), 'utf8'));
    expect(results.summary).toEqual({ passed: 2, failed: 0, skipped: 1 });
    const skipped = results.scenarios.find((s: { name: string }) => s.name === 'needs-fail-open');
    expect(skipped.reason).toContain('EPPKIT_EXTERNAL_FAILURE_MODE');
  }, 150_000);

  it('is unavailable, saying what to set, without a URL (exit 1 in CI when named explicitly)', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', '--data-plane', 'external', '--tag', 'core', '--report-dir', mkdtempSync(join(tmpdir(), 'eppkit-external-'))], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', CI: '1', EPPKIT_EXTERNAL_URL: '', EPPKIT_EXTERNAL_EPP_PORT: '' },
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('error: data plane external is not available here');
    expect(r.stdout).toContain('not available: set --external-url');
    expect(r.stdout).toMatch(/0 passed, 0 failed, \d+ skipped/);
  }, 90_000);
});
