// `eppkit bench` on deliberately broken planes (test/fixtures/broken-planes): each target fails
// (ok: false, the reason in the report) for its defect, and the healthy control passes with its
// per-process CPU attributed.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../../harness/bench/bench-options.ts';
import { renderConsole, renderMarkdown, type BenchReport } from '../../harness/bench/bench-report.ts';
import { runBench } from '../../harness/bench/bench-runner.ts';
import type { DataPlaneDriver } from '../../harness/data-planes/data-plane-driver.ts';
import { brokenPlaneDriver } from '../fixtures/broken-planes/broken-plane-driver.ts';

const dir = mkdtempSync(join(tmpdir(), 'eppkit-broken-bench-'));

async function bench(driver: DataPlaneDriver, extra: Record<string, unknown> = {}): Promise<BenchReport> {
  const o = parseBenchOptions({
    dataPlanes: [driver.name],
    direct: false,
    headroom: false,
    duration: '2s',
    warmup: '500ms',
    connections: 4,
    workers: 1,
    timeout: '2s',
    reportDir: join(dir, driver.name),
    ...extra,
  });
  return runBench(o, { command: `test ${driver.name}`, drivers: [driver] });
}

function target(r: BenchReport) {
  const t = r.results[0];
  if (!t) throw new Error(`no result: ${JSON.stringify(r.skipped)}`);
  return t;
}

describe('bench fails a broken plane with the reason', { timeout: 120_000 }, () => {
  it('a worker that crashes on its EPP timeout', async () => {
    const r = await bench(brokenPlaneDriver('crash-on-epp-timeout', { eppTimeoutMs: 1 }));
    expect(r.ok).toBe(false);
    expect(target(r).failed).toMatch(/data plane crash — broken-crash-on-epp-timeout: .*exited on signal 11/);
    expect(renderConsole(r)).toMatch(/FAILED broken-crash-on-epp-timeout: data plane crash/);
  });

  it('a plane that hangs: requests in flight at window close are timeouts, no completed request fails', async () => {
    // A request timeout longer than the window: the hung requests are still in flight when it closes.
    const r = await bench(brokenPlaneDriver('hang-after', { after: 10 }), { timeout: '30s' });
    const t = target(r);
    expect(r.ok).toBe(false);
    expect(t.failed).toMatch(/no request completed in the window \(\d+ without an answer: timeout \(in flight at window close\): \d+\)|error ratio .*timeout \(in flight at window close\)/);
    expect(t.load?.inFlightAtClose).toBeGreaterThan(0);
  });

  it('a plane that resets connections: error ratio over the limit', async () => {
    const r = await bench(brokenPlaneDriver('reset-connections', { after: 5 }));
    expect(r.ok).toBe(false);
    expect(target(r).failed).toMatch(/error ratio \d+(\.\d)?% \(\d+ of \d+: .*(ECONNRESET|socket hang up).*\) over the limit 1%/);
  });

  it('a leaking plane: a warning, a failure with strict', async () => {
    const warned = await bench(brokenPlaneDriver('leak'));
    expect(warned.ok).toBe(true);
    expect(target(warned).warnings?.[0]).toMatch(/data plane leak: open fds \d+ → \d+ \(\+\d+ > \d+\)/);
    const strict = await bench(brokenPlaneDriver('leak'), { strict: true });
    expect(strict.ok).toBe(false);
    expect(target(strict).failed).toMatch(/data plane leak: open fds .*\(--strict\)/);
  });

  it('the healthy control passes, with CPU per request for each of its processes', async () => {
    const r = await bench(brokenPlaneDriver('none'), { strict: true });
    const t = target(r);
    expect({ ok: r.ok, failed: t.failed, warnings: t.warnings }).toEqual({ ok: true, failed: undefined, warnings: undefined });
    const planeProcs = t.cpu?.processes.filter((p) => p.role === 'data plane') ?? [];
    expect(planeProcs.length).toBe(2); // primary and worker
    expect(t.cpu?.processes.map((p) => p.role)).toEqual(expect.arrayContaining(['data plane', 'EPP', 'backend', 'load worker']));
    expect(t.cpu?.dataPlaneUsPerRequest).toBeGreaterThan(0);
    expect(t.cpu?.bottleneck).toMatch(/pid \d+ \(.+\) at \d+ % of a core/);
    expect(renderMarkdown(r)).toMatch(/\| data plane \| node broken-plane \d+ \|/);
  });
});
