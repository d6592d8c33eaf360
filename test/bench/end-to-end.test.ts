// Proves `eppkit bench` runs end to end against a real data plane (node-proxy) with the real
// mock EPP and echo backend as child processes, writes bench.json / bench.md, and exits 1 on a
// failed threshold. Only the report's shape is checked, never a timing value.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeProxyDriver } from '../../harness/data-planes/node-proxy-driver.ts';
import type { BenchReport } from '../../harness/bench/bench-report.ts';
import { wrkAvailable } from '../../harness/bench/generator-headroom.ts';
import { BENCH_TOOLS, builtBenchTool } from '../../harness/build/bench-tools-build.ts';

const BIN = fileURLToPath(new URL('../../bin/eppkit.js', import.meta.url));
const avail = await nodeProxyDriver.available('local');
// In CI a missing data plane is a failure, not a skip.
const skip = !avail.ok && !process.env.CI;

describe.skipIf(skip)('eppkit bench end to end (node-proxy)', () => {
  it('measures direct and node-proxy and writes a JSON report of the documented shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-e2e-'));
    const args = [
      BIN, 'bench',
      '--data-plane', 'node-proxy',
      '--duration', '2s', '--warmup', '500ms',
      '--rate', '40', '--connections', '4', '--workers', '1',
      '--epp-delay-ms', '1',
      // eppkit's own Node echo backend and mock EPP (the compiled ones are covered below).
      '--backend', 'node', '--epp', 'mock',
      '--report-dir', dir,
      // One threshold that cannot pass and one that must: exit code 1, both reported.
      '--threshold', 'requests<0', '--threshold', 'direct:errors>=0',
      '--json', '--quiet',
    ];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 90_000, env: { ...process.env, NO_COLOR: '1' } });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(1);

    const report = JSON.parse(r.stdout) as BenchReport;
    const onDisk = JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8')) as BenchReport;
    expect(onDisk).toEqual(report);
    expect(existsSync(join(dir, 'bench.md'))).toBe(true);
    expect(readFileSync(join(dir, 'bench.md'), 'utf8')).toContain('Command: `eppkit bench --data-plane node-proxy');

    expect(report).toMatchObject({ schema: 'eppkit-bench/1', mode: 'data-planes', ok: false });
    expect(report.command).toMatch(/^eppkit bench --data-plane node-proxy /);
    expect(report.machine).toMatchObject({ cores: expect.any(Number), node: process.version, cpuModel: expect.any(String) });
    expect(report.loadClient).toMatchObject({ client: 'eppkit', executor: 'constant-arrival-rate', rate: 40, connections: 4, workers: 1, method: 'GET' });

    expect(report.results.map((x) => x.target)).toEqual(['direct', 'node-proxy']);
    for (const res of report.results) {
      expect(res.failed).toBeUndefined();
      const l = res.load!;
      expect(l.requests).toBeGreaterThan(0);
      expect(l.errors).toBe(0);
      expect(l.non2xx).toBe(0);
      expect(Object.keys(l.statusCodes)).toEqual(['200']);
      for (const k of ['p50', 'p90', 'p99', 'p999', 'max', 'min', 'mean'] as const) expect(typeof l.latencyMs[k]).toBe('number');
      expect(l.latencyMs.count).toBe(l.requests);
      expect(l.workerCpu).toHaveLength(1);
    }
    const np = report.results[1]!;
    expect(np).toMatchObject({ dataPlane: 'node-proxy', eppDelayMs: 1, version: expect.stringContaining('eppkit') });
    expect(typeof np.hopMs).toBe('number');

    expect(report.thresholds).toEqual([
      { expr: 'requests<0', target: 'direct', actual: report.results[0]!.load!.requests, ok: false },
      { expr: 'requests<0', target: 'node-proxy', actual: np.load!.requests, ok: false },
      { expr: 'direct:errors>=0', target: 'direct', actual: 0, ok: true },
    ]);
    // The data plane, mock and backend logs of each target are kept next to the report.
    expect(existsSync(join(dir, 'logs', 'node-proxy', 'mock-epp.log'))).toBe(true);
    expect(report.helpers).toEqual({ backend: expect.stringMatching(/^Node echo backend/), epp: expect.stringMatching(/^Node mock EPP/) });
    // The generator-headroom check ran wrk on direct in the same run (setup-system.sh installs wrk).
    if (wrkAvailable().ok) expect(report.headroom).toMatchObject({ wrkRps: expect.any(Number), clientRps: report.results[0]!.load!.rps, connections: 4 });
    else expect(report.notes.some((n) => n.includes('generator headroom not checked'))).toBe(true);
  }, 120_000);

  it('runs autocannon as the load client on request, into the same report shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-e2e-ac-'));
    const args = [
      BIN, 'bench',
      '--data-plane', 'node-proxy', '--client', 'autocannon',
      '--duration', '2s', '--warmup', '500ms',
      '--connections', '4', '--workers', '2', '--body-bytes', '64',
      '--epp-delay-ms', '1',
      '--report-dir', dir,
      '--json', '--quiet',
    ];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 90_000, env: { ...process.env, NO_COLOR: '1' } });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    expect(report).toMatchObject({ schema: 'eppkit-bench/1', mode: 'data-planes', ok: true });
    expect(report.loadClient).toMatchObject({ client: 'autocannon', kind: expect.stringMatching(/^autocannon \d+\.\d+\.\d+ /), executor: 'constant-vus', connections: 4, workers: 2, method: 'POST', bodyBytes: 64 });
    expect(report.notes.some((n) => /autocannon: latencies are whole milliseconds/.test(n))).toBe(true);
    expect(report.results.map((x) => x.target)).toEqual(['direct', 'node-proxy']);
    for (const res of report.results) {
      expect(res.failed).toBeUndefined();
      const l = res.load!;
      expect(l.requests).toBeGreaterThan(0);
      expect(l.errors).toBe(0);
      expect(l.non2xx).toBe(0);
      expect(Object.keys(l.statusCodes)).toEqual(['200']);
      for (const k of ['p50', 'p90', 'p99', 'p999', 'max', 'min', 'mean'] as const) expect(typeof l.latencyMs[k]).toBe('number');
      // Whole milliseconds: autocannon's resolution, kept as it is.
      for (const k of ['p50', 'p90', 'p99', 'max'] as const) expect(Number.isInteger(l.latencyMs[k])).toBe(true);
      expect(l.latencyMs.count).toBe(l.requests);
      expect(l).not.toHaveProperty('dropped');
      expect(l.workerCpu).toHaveLength(1);
    }
    expect(typeof report.results[1]!.hopMs).toBe('number');
    expect(readFileSync(join(dir, 'bench.md'), 'utf8')).toContain('Load client: autocannon');
    // The default (auto) takes the compiled helpers whenever `eppkit build bench` has run (CI does).
    const built = builtBenchTool(BENCH_TOOLS.echoBackend) && builtBenchTool(BENCH_TOOLS.benchEpp);
    expect(report.helpers).toEqual(built ? { backend: expect.stringMatching(/^compiled echo backend/), epp: expect.stringMatching(/^compiled bench EPP/) } : { backend: expect.stringMatching(/^Node/), epp: expect.stringMatching(/^Node/) });
  }, 120_000);

  it('refuses bad flags with every problem and no stack trace', () => {
    const r = spawnSync(process.execPath, [BIN, 'bench', '--duration', 'soon', '--connections', '-1', '--threshold', 'p99 small'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('EPPKIT_CONFIG_INVALID');
    expect(r.stderr).toMatch(/duration: duration "soon" is not a duration/);
    expect(r.stderr).toMatch(/connections:/);
    expect(r.stderr).toMatch(/thresholds\[0\]: "p99 small" is not a threshold/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});
