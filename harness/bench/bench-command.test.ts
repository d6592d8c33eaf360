import { describe, expect, it } from 'vitest';
import { EppkitError } from '../../core/errors.ts';
import type { DataPlaneDriver } from '../data-planes/data-plane-driver.ts';
import { commandLine, flagsToOptions } from './bench-command.ts';
import { parseBenchOptions } from './bench-options.ts';
import { resolveDataPlanes } from './bench-runner.ts';

const driver = (name: string): DataPlaneDriver => ({
  name,
  description: name,
  features: new Set(),
  available: async () => ({ ok: true }),
  start: async () => {
    throw new Error('not started in this test');
  },
});

describe('bench command plumbing', () => {
  it('quotes the command line so the report can be pasted back into a shell', () => {
    expect(commandLine(['bench', '--data-plane', 'node-proxy,nginx', '--threshold', 'p99<5', '--threshold', "it's"])).toBe(
      "eppkit bench --data-plane node-proxy,nginx --threshold 'p99<5' --threshold 'it'\\''s'",
    );
  });

  it('maps only the flags given onto option keys, so a bench file value is not overridden by absent flags', () => {
    const o = flagsToOptions({ kind: 'nonblocking', 'data-plane': 'nginx', 'epp-delay-ms': '50', threshold: ['rps>1'], 'report-dir': 'x' });
    expect(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))).toEqual({
      mode: 'nonblocking',
      dataPlanes: 'nginx',
      eppDelayMs: '50',
      thresholds: ['rps>1'],
      reportDir: 'x',
    });
    expect(parseBenchOptions(o)).toMatchObject({ mode: 'nonblocking', dataPlanes: ['nginx'], connections: 500 });
  });

  it('resolves all to every driver but external, keeps order, drops duplicates, refuses unknown names', () => {
    const reg = [driver('node-proxy'), driver('external'), driver('envoy')];
    expect(resolveDataPlanes(['all'], reg).map((d) => d.name)).toEqual(['node-proxy', 'envoy']);
    expect(resolveDataPlanes(['envoy', 'all', 'external'], reg).map((d) => d.name)).toEqual(['envoy', 'node-proxy', 'external']);
    expect(() => resolveDataPlanes(['nope'], reg)).toThrow(EppkitError);
  });
});
