// `eppkit bench --runtime docker` runs eppkit's own helpers as the data plane runs: the mock EPP
// and the Node echo backend in eppkit/node containers (host network), not as local processes.
// Proved by the containers Docker started for the run and by the report's helper lines.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImages } from '../../harness/containers/build-images.ts';
import { docker } from '../../harness/containers/docker-cli.ts';
import { dockerSkipReason } from '../../harness/containers/docker-test-gate.ts';
import { eppkitCommand } from '../../harness/launch/launch.ts';

const skip = await dockerSkipReason();

describe.skipIf(skip !== undefined)(`eppkit bench --runtime docker${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    await buildImages({ only: ['node'] });
  }, 900_000);

  it('starts the mock EPP and the Node backend in eppkit/node, beside node-proxy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-docker-'));
    const since = Math.floor(Date.now() / 1000) - 1;
    const { command, args } = eppkitCommand();
    const r = spawnSync(
      command,
      [...args, 'bench', '--runtime', 'docker', '--data-plane', 'node-proxy', '--no-direct', '--epp', 'mock', '--backend', 'node', '--duration', '1s', '--warmup', '0s', '--no-headroom', '--report-dir', dir, '--quiet'],
      { encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const until = Math.ceil(Date.now() / 1000) + 1;
    const report = JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8')) as { helpers: { backend: string; epp: string }; results: Array<{ target: string; failed?: string; load?: { requests: number } }> };
    expect(report.helpers.epp).toContain('in a container (eppkit/node)');
    expect(report.helpers.backend).toContain('in a container (eppkit/node)');
    const np = report.results.find((t) => t.target === 'node-proxy');
    expect(np?.failed).toBeUndefined();
    expect(np?.load?.requests).toBeGreaterThan(0);
    // Docker started three eppkit/node containers for the target: backend, mock EPP, node-proxy.
    const ev = await docker(['events', '--since', String(since), '--until', String(until), '--filter', 'event=start', '--filter', 'label=eppkit.owner=harness', '--format', '{{.Actor.Attributes.image}}'], 30_000);
    const started = ev.stdout.split('\n').filter((l) => /^eppkit\/node(:latest)?$/.test(l.trim()));
    expect(started.length, ev.stdout + ev.stderr).toBeGreaterThanOrEqual(3);
  }, 300_000);
});
