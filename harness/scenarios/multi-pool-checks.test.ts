import { describe, expect, it } from 'vitest';
import { isEppkitError } from '../../core/errors.ts';
import { parseScenario } from './load-scenarios.ts';

function problems(text: string): string[] {
  try {
    parseScenario(text, 'bad.yaml');
  } catch (e) {
    if (isEppkitError(e)) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  return [];
}

const GOOD = `name: s
description: d
features: [multi-pool, fail-open]
setup:
  backends: [{ name: a-0 }, { name: b-0 }]
  pools:
    - { name: a, backends: [a-0] }
    - { name: b, backends: [b-0], failureMode: open, fallback: [b-0] }
  routes:
    - { name: ra, pathPrefix: /a, pools: [a] }
    - { name: rb, listener: gw-2, pathPrefix: /b, pools: [{ pool: b, weight: 3 }] }
steps:
  - action: stop-epp
    pool: b
  - request: { path: /a/x, route: ra, repeat: 20 }
    expect: { split: { weights: { a: 1, b: 1 } } }
    epps: { a: { entries: 20 }, b: { entries: 0 } }
`;

describe('multi-pool scenario checks', () => {
  it('accepts a valid multi-pool scenario and applies defaults', () => {
    const s = parseScenario(GOOD, 'good.yaml');
    expect(s.setup.routes?.[0]?.listener).toBe('default');
    expect(s.setup.pools?.[0]?.failureMode).toBeUndefined(); // follows the plane's settings
    expect(s.setup.pools?.[0]?.timeoutMs).toBe(5000);
    expect(s.steps[1] && 'request' in s.steps[1] && s.steps[1].expect.split?.falseFailureProbability).toBe(1e-6);
  });

  it('reports every broken reference at once, with its path', () => {
    const bad = GOOD.replace('backends: [a-0] }', 'backends: [a-9] }')
      .replace('pools: [a] }', 'pools: [a, zz] }')
      .replace('pool: b\n', 'pool: nope\n')
      .replace('route: ra,', 'route: rz,')
      .replace('b: { entries: 0 }', 'q: { entries: 0 }')
      .replace('weights: { a: 1, b: 1 }', 'weights: { a: 1, x: 1 }');
    const p = problems(bad);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringContaining('setup.pools[0].backends[0]: unknown backend "a-9"'),
        expect.stringContaining('setup.routes[0].pools[1]: unknown pool "zz"'),
        expect.stringContaining('steps[0].pool: unknown pool "nope"'),
        expect.stringContaining('steps[1].request.route: unknown route "rz"'),
        expect.stringContaining('steps[1].epps.q: unknown pool "q"'),
        expect.stringContaining('steps[1].expect.split.weights.x: unknown pool "x"'),
      ]),
    );
  });

  it('refuses pools without routes, single-route keys beside pools, a path outside the route, a repeated rule', () => {
    expect(problems(GOOD.replace(/  routes:\n(    - .*\n)+/, ''))).toEqual(expect.arrayContaining([expect.stringContaining('pools need routes')]));
    expect(problems(GOOD.replace('  pools:\n', '  route: { failureMode: open }\n  pools:\n'))).toEqual(expect.arrayContaining([expect.stringContaining('setup.route')]));
    expect(problems(GOOD.replace('path: /a/x', 'path: /ab'))).toEqual(expect.arrayContaining([expect.stringContaining('is not under route "ra"')]));
    expect(problems(GOOD.replace('listener: gw-2, pathPrefix: /b', 'pathPrefix: /a'))).toEqual(expect.arrayContaining([expect.stringContaining('already has a route for /a')]));
  });

  it('refuses multi-pool keys in a single-route scenario', () => {
    const single = `name: s
description: d
setup:
  backends: [{ name: a-0 }]
steps:
  - request: { path: /x, route: r }
    epps: { a: {} }
`;
    expect(problems(single)).toEqual(expect.arrayContaining([expect.stringContaining('route is for multi-pool'), expect.stringContaining('epps is for multi-pool')]));
  });
});
