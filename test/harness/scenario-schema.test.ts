// The scenario format: the committed JSON Schema is what the zod schema generates, every
// built-in scenario is valid, and every problem of a bad file is reported with line and path.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEppkitError, type EppkitError } from '../../core/errors.ts';
import { SCHEMA_FILE, scenarioJsonSchema } from '../../harness/scenarios/generate-schema.ts';
import { loadScenarios, parseScenario } from '../../harness/scenarios/load-scenarios.ts';

function problemsOf(text: string): EppkitError {
  try {
    parseScenario(text, 'bad.yaml');
  } catch (e) {
    if (isEppkitError(e)) return e;
    throw e;
  }
  throw new Error('expected the scenario to be refused');
}

const BASE = `name: s
description: d
setup:
  backends:
    - name: pod-a
steps:
  - request: { method: GET, path: /v1/models }
    expect: { status: 200 }
`;

describe('scenario schema', () => {
  it('scenarios/scenario.schema.json is up to date (node harness/scenarios/generate-schema.ts)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(scenarioJsonSchema());
  });

  it('every built-in scenario is valid, with unique names, and there are at least 20', () => {
    const all = loadScenarios([]);
    expect(all.length).toBeGreaterThanOrEqual(20);
    expect(new Set(all.map((s) => s.scenario.name)).size).toBe(all.length);
  });

  it('accepts sizes with units and applies defaults', () => {
    const s = parseScenario(BASE.replace('request: { method: GET, path: /v1/models }', 'request: { method: POST, body: { random: { size: 8MiB } } }'), 'x.yaml');
    const step = s.steps[0] as { request: { body: { random: { size: number; seed: number } }; repeat: number } };
    expect(step.request.body.random).toEqual({ size: 8 * 1024 * 1024, seed: 1 });
    expect(step.request.repeat).toBe(1);
    // Unset: the scenario works in any mode (the plane's own); nothing implicit.
    expect(s.setup.route.failureMode).toBeUndefined();
    expect(s.setup.route.bodyMode).toBeUndefined();
  });

  it('refuses a scenario that uses a feature it does not list (no implicit body-buffered), naming the feature to add', () => {
    const text = `name: implicit
description: d
features: [timeout]
setup:
  backends:
    - name: pod-a
    - name: pod-6
      ip: "::1"
  route:
    bodyMode: buffered
    failureMode: open
    subsetHint: [pod-a]
steps:
  - request:
      headers: { x-eppkit-delay-ms: "4000" }
      abortAfterMs: 100
    expect: { maxLatencyMs: 3000, headers: { x-conformance-test-served-endpoint: "{{pod-a}}" } }
  - request: { method: POST, body: { text: x } }
    epp: { phases: [request_headers, request_body] }
`;
    const e = problemsOf(text.replace('    bodyMode: buffered\n', ''));
    const byPath = new Map(e.problems.map((p) => [p.path, p.message]));
    expect(byPath.get('setup.route.failureMode')).toContain('add fail-open to features');
    expect(byPath.get('setup.route.subsetHint')).toContain('add subset-hint');
    expect(byPath.get('setup.backends[1].ip')).toContain('add ipv6-endpoint');
    expect(byPath.get('steps[0].expect.headers.x-conformance-test-served-endpoint')).toContain('add header-mutation');
    expect(byPath.get('steps[0].expect.maxLatencyMs')).toContain('{{timeoutMs');
    expect(byPath.get('steps[0].request.abortAfterMs')).toContain('{{timeoutMs');
    expect(byPath.get('steps[0].request.headers.x-eppkit-delay-ms')).toContain('{{timeoutMs*4}}');
    expect(byPath.get('steps[1].epp')).toContain('set route.bodyMode');
    const e2 = problemsOf(text);
    expect(new Map(e2.problems.map((p) => [p.path, p.message])).get('setup.route.bodyMode')).toContain('add body-buffered');
  });

  it('accepts timings relative to the plane timeout and refuses other templates there', () => {
    const ok = parseScenario(BASE.replace('request: { method: GET, path: /v1/models }', 'request: { abortAfterMs: "{{timeoutMs/10}}" }'), 'x.yaml');
    expect((ok.steps[0] as { request: { abortAfterMs: string } }).request.abortAfterMs).toBe('{{timeoutMs/10}}');
    const e = problemsOf(BASE.replace('request: { method: GET, path: /v1/models }', 'request: { abortAfterMs: "{{timeout*2}}" }'));
    expect(e.problems[0]?.path).toBe('steps[0].request.abortAfterMs');
  });

  it('reports every problem with its line and path: unknown keys, bad values, unknown backends, bad templates, bad mock EPP config', () => {
    const text = `name: Bad Name
description: d
setup:
  backends:
    - name: pod-a
      ip: 10.0.0.1
  epp:
    picker: fastest
  route:
    fallback: [pod-x]
steps:
  - request:
      method: GET
      headers: { x-to: "{{pod-q}}" }
      bogus: 1
    expect: { status: 700, backend: pod-b }
  - action: stop-backend
    backend: pod-z
`;
    const e = problemsOf(text);
    expect(e.code).toBe('EPPKIT_SCENARIO_INVALID');
    expect(e.exitCode).toBe(2);
    const byPath = new Map(e.problems.map((p) => [p.path, p]));
    expect(byPath.get('name')?.line).toBe(1);
    expect(byPath.get('setup.backends[0].ip')?.line).toBe(6);
    expect(byPath.get('setup.route.fallback[0]')?.message).toContain('pod-x');
    expect(byPath.get('steps[0].request.bogus')?.message).toMatch(/unknown key "bogus"/);
    expect(byPath.get('steps[0].request.bogus')?.line).toBe(15);
    expect(byPath.get('steps[0].expect.status')?.line).toBe(16);
    expect(byPath.get('steps[1].backend')?.line).toBe(18);
    // The schema error stops before the semantic pass: fix, then see the rest.
    const e2 = problemsOf(`${BASE.replace('name: s', 'name: s2')}  - request: { headers: { x: "{{pod-q}}" } }\n`.replace('setup:', 'setup:\n  epp: { picker: fastest }'));
    const p2 = new Map(e2.problems.map((p) => [p.path, p]));
    expect(p2.get('steps[1].request.headers.x')?.message).toContain('{{pod-q}}');
    expect(p2.get('setup.epp.picker')).toBeDefined();
    expect(p2.get('setup.epp.picker')?.line).toBe(4);
  });

  it('refuses a YAML syntax error with its line', () => {
    const e = problemsOf('name: a\nsetup: [\n');
    expect(e.problems[0]?.line).toBeGreaterThan(0);
  });

  it('reports every bad file of a run at once, each problem with its file; the mock EPP config is checked even when the rest is broken', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-scenarios-'));
    writeFileSync(join(dir, 'a.yaml'), BASE.replace('name: s', 'name: a').replace('    - name: pod-a', '    - name: pod-a\n      latncyMs: 3').replace('  - request:', '  - action: stop-ep\n  - request:'));
    writeFileSync(join(dir, 'b.yaml'), BASE.replace('name: s', 'name: b').replace('setup:', 'setup:\n  epp: { picker: round-robn }').replace('expect: { status: 200 }', 'expect: { status: 200, bakend: pod-a }'));
    writeFileSync(join(dir, 'c.yaml'), BASE.replace('name: s', 'name: c'));
    let e: EppkitError | undefined;
    try {
      loadScenarios([dir]);
    } catch (x) {
      if (isEppkitError(x)) e = x;
      else throw x;
    }
    expect(e?.code).toBe('EPPKIT_SCENARIO_INVALID');
    const got = (e?.problems ?? []).map((p) => [p.file?.replace(`${dir}/`, ''), p.line, p.path, p.message]);
    expect(got).toEqual([
      ['a.yaml', 6, 'setup.backends[0].latncyMs', 'unknown key "latncyMs" (did you mean "latencyMs"?)'],
      ['a.yaml', 8, 'steps[0].action', expect.stringMatching(/^"stop-ep" is not one of: "stop-epp", "kill-epp", .*"sleep" \(did you mean "stop-epp"\?\)$/)],
      ['b.yaml', 4, 'setup.epp.picker', expect.stringContaining('did you mean "round-robin"?')],
      ['b.yaml', 9, 'steps[0].expect.bakend', 'unknown key "bakend" (did you mean "backend"?)'],
    ]);
    expect(e?.format()).toContain(`${join(dir, 'b.yaml')}\n    - line 4, setup.epp.picker:`);
  });
});
