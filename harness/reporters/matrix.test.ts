import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DRIVERS } from '../data-planes/registry.ts';
import { loadScenarios } from '../scenarios/load-scenarios.ts';
import { mergeResults, README_END, README_START, renderMatrix, renderReadmeTable, spliceReadme, type MatrixInput } from './matrix.ts';

const RUN: MatrixInput = {
  startedAt: '2026-11-29T23:00:00.000Z',
  durationMs: 61_000,
  command: 'eppkit run --data-plane all',
  runtime: 'local',
  dataPlanes: [
    { name: 'node-proxy', available: true },
    { name: 'envoy', available: true },
    { name: 'external', available: false, reason: 'set --external-url' },
  ],
  scenarios: [
    { name: 'a', dataPlane: 'node-proxy', status: 'passed', file: 'scenarios/a.yaml', tags: ['t'], description: 'proves a', steps: [] },
    { name: 'a', dataPlane: 'envoy', status: 'failed', reason: 'step 2 (x): status | 502\nmore', steps: [] },
    { name: 'b', dataPlane: 'node-proxy', status: 'skipped', reason: 'node-proxy does not support: tls', steps: [] },
    { name: 'b', dataPlane: 'envoy', status: 'passed', steps: [{ name: 'timeout', override: 'Envoy answers 504' }] },
  ],
};

describe('the matrix', () => {
  it('has a row per scenario and a column per available plane: pass, fail with its reason on one line, skip with its reason', () => {
    const md = renderMatrix(RUN, 'eppkit report r.json');
    expect(md).toContain('eppkit run --data-plane all');
    expect(md).toContain('2026-11-29 23:00:00 UTC');
    expect(md).toContain('| scenario | tags | node-proxy | envoy |');
    expect(md).toMatch(/\| \[a\]\(\.\.\/scenarios\/a\.yaml\) \| t \| pass \| \*\*FAIL\*\*: step 2 \(x\): status \\\| 502 more \|/);
    expect(md).toContain('| b |  | skip: node-proxy does not support: tls | pass † |');
    expect(md).toContain('| b | envoy | timeout | Envoy answers 504 |');
    expect(md).toContain('| external | not available here: set --external-url | | |');
  });

  it('merges runs, the later winning per scenario and plane', () => {
    const later: MatrixInput = { command: 'eppkit run scenarios/a.yaml', dataPlanes: [{ name: 'envoy', available: true }], scenarios: [{ name: 'a', dataPlane: 'envoy', status: 'passed' }] };
    const m = mergeResults([RUN, later]);
    expect(m.scenarios.find((s) => s.name === 'a' && s.dataPlane === 'envoy')?.status).toBe('passed');
    expect(m.scenarios).toHaveLength(4);
    expect(m.command).toContain('eppkit run scenarios/a.yaml');
  });

  it('replaces only the README block between its markers', () => {
    const table = renderReadmeTable(RUN);
    const once = spliceReadme('# x\n\nintro\n', table);
    expect(once).toContain(README_START);
    const twice = spliceReadme(`${once}\n## after\n`, renderReadmeTable({ ...RUN, scenarios: RUN.scenarios.slice(0, 1) }));
    expect(twice.match(new RegExp(README_START.replace(/[()]/g, '\\$&'), 'g'))).toHaveLength(1);
    expect(twice).toContain('## after');
    expect(twice).toContain('| node-proxy | 1 | 0 | 0 |');
    expect(twice.indexOf(README_END)).toBeGreaterThan(twice.indexOf(README_START));
  });
});

// docs/MATRIX.md comes from a real run; this keeps it in step with the scenario files and the
// built-in planes. When it fails: run the new scenarios on every plane and merge them in:
//   eppkit run <new scenario files> --data-plane all --report-dir r2
//   eppkit report <the last full run>/results.json r2/results.json --readme README.md
// (or a whole new run: eppkit run --data-plane all --report-dir r && eppkit report r/results.json --readme README.md).
describe('docs/MATRIX.md', () => {
  const file = new URL('../../docs/MATRIX.md', import.meta.url);
  const md = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const rows = new Set([...md.matchAll(/^\| \[([a-z0-9-]+)\]\(/gm)].map((m) => m[1]));

  it('lists every scenario of scenarios/ and no scenario that is gone', () => {
    const names = loadScenarios([]).map((l) => l.scenario.name);
    expect(names.filter((n) => !rows.has(n)), 'scenarios missing from docs/MATRIX.md (regenerate it, see above)').toEqual([]);
    expect([...rows].filter((n) => !names.includes(n as string)), 'rows of docs/MATRIX.md with no scenario file').toEqual([]);
  });

  it('has a column for every built-in data plane', () => {
    const header = md.split('\n').find((l) => l.startsWith('| scenario | tags |')) ?? '';
    const builtIn = DRIVERS.map((d) => d.name).filter((n) => n !== 'external');
    expect(builtIn.filter((p) => !header.includes(` ${p} `)), 'planes missing from docs/MATRIX.md').toEqual([]);
  });
});
