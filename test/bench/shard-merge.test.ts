// Distributed load, proven on one machine: N `eppkit bench --url U --shard i/N` load generators
// run at the same time against one target (as processes, and as eppkit/node containers the way
// the Indexed Job in deploy/bench runs them), then `eppkit bench merge` joins their reports.
// The merged counts must be the sums of the shards', and the merged percentiles must come from
// the union of their histograms (bounded by the shards' own, max equal to the largest max).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { histogramCount } from '../../harness/bench/bench-merge.ts';
import type { BenchReport } from '../../harness/bench/bench-report.ts';
import { docker } from '../../harness/containers/docker-cli.ts';
import { dockerSkipReason } from '../../harness/containers/docker-test-gate.ts';
import { ensureEppkitImageCurrent } from '../../harness/containers/image-roles.ts';
import { eppkitCommand } from '../../harness/launch/launch.ts';
import { ManagedProcess } from '../../harness/launch/managed-process.ts';

const { command: NODE, args: PRE } = eppkitCommand();

function eppkit(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [...PRE, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

const SHARD_ARGS = ['--connections', '6', '--duration', '1500ms', '--warmup', '200ms', '--workers', '1', '--json', '--quiet'];

function checkMerge(shards: BenchReport[], merged: BenchReport): void {
  const loads = shards.map((s) => s.results[0]!.load!);
  const m = merged.results[0]!.load!;
  expect(merged.merged?.shards).toBe(shards.length);
  expect(loads.every((l) => l.requests > 0)).toBe(true);
  expect(m.requests).toBe(loads.reduce((a, l) => a + l.requests, 0));
  expect(m.statusCodes['200']).toBe(loads.reduce((a, l) => a + (l.statusCodes['200'] ?? 0), 0));
  expect(m.errors).toBe(loads.reduce((a, l) => a + l.errors, 0));
  expect(histogramCount(m.histogram!)).toBe(loads.reduce((a, l) => a + histogramCount(l.histogram!), 0));
  expect(m.latencyMs.count).toBe(histogramCount(m.histogram!));
  // Percentiles of a union lie between the parts' own; the max is the largest max.
  for (const k of ['p50', 'p99'] as const) {
    expect(m.latencyMs[k]).toBeGreaterThanOrEqual(Math.min(...loads.map((l) => l.latencyMs[k])) - 0.01);
    expect(m.latencyMs[k]).toBeLessThanOrEqual(Math.max(...loads.map((l) => l.latencyMs[k])) + 0.01);
  }
  expect(m.latencyMs.max).toBeCloseTo(Math.max(...loads.map((l) => l.latencyMs.max)), 1);
  // Each shard sent its share of the connections: 6 over the shards, as evenly as possible.
  expect(shards.map((s) => s.shard!.connections).reduce((a, b) => a + b, 0)).toBe(6);
  expect(merged.ok).toBe(true);
}

describe('bench --shard i/n + bench merge', () => {
  let backend: ManagedProcess;
  let url: string;
  beforeAll(async () => {
    backend = new ManagedProcess({ what: 'echo backend', command: NODE, args: [...PRE, 'backend', '--listen', '127.0.0.2:0', '--name', 'target'] });
    const m = await backend.waitForLine(/listening on (http:\/\/\S+)/, 20_000);
    url = `${m[1]}/v1/completions`;
  });
  afterAll(async () => {
    await backend?.stop();
  });

  it('three shards as processes: merged counts are the sums, percentiles from the joined histograms', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-shards-'));
    const runs = await Promise.all([0, 1, 2].map((i) => eppkit(['bench', '--url', url, '--shard', `${i}/3`, ...SHARD_ARGS, '--report-dir', join(dir, `s${i}`)])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const shards = runs.map((r) => JSON.parse(r.stdout) as BenchReport);
    expect(shards.map((s) => s.shard?.index)).toEqual([0, 1, 2]);
    const files = shards.map((s, i) => {
      const f = join(dir, `shard-${i}.json`);
      writeFileSync(f, `${JSON.stringify(s, null, 2)}\n`);
      return f;
    });
    const merged = await eppkit(['bench', 'merge', ...files, '--json', '--report-dir', join(dir, 'merged')]);
    expect(merged.code, merged.stderr).toBe(0);
    checkMerge(shards, JSON.parse(merged.stdout) as BenchReport);
    expect(JSON.parse(readFileSync(join(dir, 'merged', 'bench-merged.json'), 'utf8')).merged.shards).toBe(3);
    // A missing shard is refused with its name, not merged into a smaller truth.
    const partial = await eppkit(['bench', 'merge', files[0]!, files[2]!]);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toMatch(/missing shard 1\/3/);
  }, 120_000);

  it('two shards as eppkit/node containers, joined from their interleaved logs as kubectl logs gives them', async () => {
    if (await dockerSkipReason()) return;
    await ensureEppkitImageCurrent();
    const names = [0, 1].map((i) => `eppkit-shard-${process.pid}-${i}`);
    try {
      const started = await Promise.all(
        names.map((n, i) => docker(['run', '-d', '--network', 'host', '--name', n, '--entrypoint', 'eppkit', 'eppkit/node:latest', 'bench', '--url', url, '--shard', `${i}/2`, ...SHARD_ARGS], 60_000)),
      );
      for (const s of started) expect(s.code, s.stderr).toBe(0);
      const waits = await Promise.all(names.map((n) => docker(['wait', n], 120_000)));
      expect(waits.map((w) => w.stdout.trim())).toEqual(['0', '0']);
      const logs = await Promise.all(names.map((n) => docker(['logs', n])));
      const stream = logs.map((l) => `${l.stdout}${l.stderr}`).join('');
      const shards = logs.map((l) => JSON.parse(l.stdout) as BenchReport);
      const merged = await eppkit(['bench', 'merge', '-', '--json', '--report-dir', mkdtempSync(join(tmpdir(), 'eppkit-shards-'))], stream);
      expect(merged.code, merged.stderr).toBe(0);
      checkMerge(shards, JSON.parse(merged.stdout) as BenchReport);
    } finally {
      await Promise.all(names.map((n) => docker(['rm', '-f', n])));
    }
  }, 300_000);
});

