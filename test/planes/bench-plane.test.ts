// `eppkit bench --plane` measures a plane file beside `direct` and a built-in plane, in one
// run and one table: the plane file's plane (eppkit's node-proxy, started through a plane file
// as a user would start theirs) is started with the bench route, loaded, named by its version
// command, and stopped. Numbers are never asserted; that every target was measured is.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, eppkit } from './plane-kit.ts';

describe('eppkit bench --plane', () => {
  it('measures a plane file beside direct and node-proxy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-plane-'));
    writeFileSync(
      join(dir, 'my-proxy.yaml'),
      `name: my-proxy
kind: node
version: ["${process.execPath}", "--version"]
features: [body-none, body-buffered, fail-close, timeout]
start:
  command: ["${process.execPath}", "${BIN}", "node-proxy", "--listen", "{{listen}}", "--epp", "{{epp}}", "--body-mode", "{{bodyMode}}", "--timeout-ms", "{{timeoutMs}}"]
  ready: { log: { matches: "listening on http" } }
  readyTimeoutMs: 60000
`,
    );
    const r = eppkit(['bench', '--plane', 'my-proxy.yaml', '--data-plane', 'node-proxy', '--duration', '2s', '--warmup', '500ms', '--connections', '4', '--no-headroom', '--json', '--quiet', '--report-dir', 'out'], dir, 300_000);
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/);
    const report = JSON.parse(r.stdout) as { results: Array<{ target: string; version?: string; load: { requests: number; errors: number } }> };
    const targets = new Map(report.results.map((x) => [x.target, x]));
    expect([...targets.keys()]).toEqual(['direct', 'node-proxy', 'my-proxy']);
    for (const t of targets.values()) expect(t.load.requests, t.target).toBeGreaterThan(0);
    expect(targets.get('my-proxy')?.version).toBe(process.version);
    // A plane by url is measured with --url, not started: said so, exit 2.
    writeFileSync(join(dir, 'running.yaml'), 'name: running\nfeatures: [body-buffered]\nurl: http://127.0.0.1:8080\neppPort: 9002\n');
    const u = eppkit(['bench', '--plane', 'running.yaml', '--duration', '1s'], dir, 60_000);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('measure it with eppkit bench --url http://127.0.0.1:8080');
  }, 360_000);
});
