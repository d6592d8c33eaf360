// The worked plane files of docs/your-data-plane.md, run for real over the whole catalogue:
// NGINX + eppkit's module from a hand-written template, and Envoy from a hand-written
// envoy.yaml template, each started, rendered and stopped by eppkit per scenario. Each must
// pass exactly the scenarios its built-in counterpart (nginx-direct, envoy) can run, the
// multi-pool ones included: the same features, the same count, nothing failed. CI=true makes a missing nginx or Envoy a failure.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DataPlaneDriver } from '../../harness/data-planes/data-plane-driver.ts';
import { envoyDriver } from '../../harness/data-planes/envoy-driver.ts';
import { nginxDirectDriver } from '../../harness/data-planes/nginx-driver.ts';
import { PlaneFileDriver } from '../../harness/data-planes/plane-file-driver.ts';
import { requiredFeatures } from '../../harness/runner/run-scenario.ts';
import { loadScenarios } from '../../harness/scenarios/load-scenarios.ts';
import { gateFor } from '../support/envoy-test-kit.ts';
import { PLANES, eppkit, notPassed, results } from './plane-kit.ts';

/** Scenarios whose own overrides skip them on this built-in plane (an expected difference). */
function skippedOn(name: string): string[] {
  return loadScenarios([])
    .filter((l) => l.scenario.steps.some((st) => {
      const o = (st as { overrides?: Record<string, unknown> }).overrides?.[name];
      return [o].flat().some((x) => (x as { skip?: boolean } | undefined)?.skip === true);
    }))
    .map((l) => l.scenario.name);
}

/** Scenarios a plane with these features runs (the rest skip for a missing feature). */
function runnable(d: DataPlaneDriver): string[] {
  return loadScenarios([])
    .filter((l) => requiredFeatures(l.scenario).every((f) => d.features.has(f)))
    .map((l) => l.scenario.name)
    .sort();
}

for (const [file, builtIn] of [
  ['nginx-module.plane.yaml', nginxDirectDriver],
  ['envoy.plane.yaml', envoyDriver],
] as const) {
  const gate = await gateFor(builtIn);
  describe.skipIf(gate.skip)(`worked plane file ${file}`, () => {
    it(`${builtIn.name}'s tools are here (CI=true demands it)`, () => {
      expect(gate.availability).toEqual({ ok: true });
    });

    it(`claims what ${builtIn.name} claims, and passes every scenario ${builtIn.name} can run`, () => {
      const plane = new PlaneFileDriver(join(PLANES, file));
      expect([...plane.features].sort()).toEqual([...builtIn.features].sort());
      expect(runnable(plane)).toEqual(runnable(builtIn));
      const dir = mkdtempSync(join(tmpdir(), 'eppkit-worked-'));
      const r = eppkit(['run', '--plane', join(PLANES, file), '--report-dir', dir], dir);
      const rs = results(dir);
      expect(notPassed(rs).filter((x) => x.startsWith('failed')), r.stdout.slice(-3000)).toEqual([]);
      const passed = rs.scenarios.filter((s) => s.status === 'passed').map((s) => s.name).sort();
      // Skipped by the plane file's own overrides: declared, with their why in every report, and
      // only where the scenarios skip the built-in plane too (no gap of the template hidden).
      const declared = rs.scenarios.filter((s) => s.status === 'skipped' && s.override).map((s) => s.name);
      expect(declared.filter((n) => !skippedOn(builtIn.name).includes(n))).toEqual([]);
      expect(passed).toEqual(runnable(plane).filter((n) => !declared.includes(n)));
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${plane.name}: ran ${passed.length} of ${rs.scenarios.length} scenarios`);
      // The version command names the implementation in the reports.
      expect(rs.dataPlanes[0]?.version).toMatch(builtIn === envoyDriver ? /envoy/i : /nginx/i);
    }, 1_200_000);
  });
}
