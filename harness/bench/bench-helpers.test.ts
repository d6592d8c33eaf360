import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TestBed } from '../launch/test-bed.ts';
import { benchBackendLaunch, benchEppLaunch, planHelpers, startOnBed, type HelperPlan } from './bench-helpers.ts';

/** A bed that records what it was asked to launch, and where. */
function recordingBed(): { bed: TestBed; calls: Array<{ what: string; image: string; command: string[]; runtime: string | undefined }> } {
  const calls: Array<{ what: string; image: string; command: string[]; runtime: string | undefined }> = [];
  const bed = {
    withLaunched: async (spec: { what: string; image: string; command: string[] }, o: { runtime?: string } = {}) => {
      calls.push({ what: spec.what, image: spec.image, command: spec.command, runtime: o.runtime });
      return { ready: ['', '127.0.0.1:9'] };
    },
  } as unknown as TestBed;
  return { bed, calls };
}

describe('bench helpers', () => {
  it('--runtime docker: the mock EPP and the Node backend run in eppkit/node, on the bed’s runtime', async () => {
    const plan = planHelpers({ backend: 'node', epp: 'mock' }, 'docker');
    expect(plan.epp.description).toContain('in a container (eppkit/node)');
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-helpers-'));
    const { bed, calls } = recordingBed();
    await startOnBed(bed, benchBackendLaunch(plan, dir));
    const epp = await startOnBed(bed, benchEppLaunch(plan, '127.0.0.2:8000', 0, dir));
    expect(epp.address).toBe('127.0.0.1:9');
    expect(calls.map((c) => [c.what, c.image, c.command.slice(0, 2), c.runtime])).toEqual([
      ['echo backend', 'eppkit/node', ['eppkit', 'backend'], undefined],
      ['mock EPP', 'eppkit/node', ['eppkit', 'mock-epp'], undefined],
    ]);
    // Its config is in the target's dir, which the container gets mounted at the same path.
    const cfg = calls[1]!.command[calls[1]!.command.indexOf('--config') + 1]!;
    expect(cfg.startsWith(dir)).toBe(true);
    expect(JSON.parse(readFileSync(cfg, 'utf8')).endpoints).toEqual(['127.0.0.2:8000']);
  });

  it('compiled helpers always run as local processes (no image carries them)', async () => {
    const plan: HelperPlan = {
      backend: { kind: 'native', command: '/opt/eppkit-echo-backend', description: '' },
      epp: { kind: 'native', command: '/opt/eppkit-bench-epp', description: '' },
    };
    const { bed, calls } = recordingBed();
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-helpers-'));
    await startOnBed(bed, benchBackendLaunch(plan, dir));
    await startOnBed(bed, benchEppLaunch(plan, '127.0.0.2:8000', 0, dir));
    expect(calls.map((c) => [c.command[0], c.runtime])).toEqual([
      ['/opt/eppkit-echo-backend', 'local'],
      ['/opt/eppkit-bench-epp', 'local'],
    ]);
  });
});
