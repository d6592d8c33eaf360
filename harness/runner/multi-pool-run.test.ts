import { describe, expect, it } from 'vitest';
import { parseScenario } from '../scenarios/load-scenarios.ts';
import type { ExchangeResult } from './http-exchange.ts';
import { binomialAcceptance, buildPlaneRoute, checkSplit, listenerNames } from './multi-pool-run.ts';

const SCENARIO = `name: s
description: d
features: [multi-pool, fail-open]
setup:
  backends: [{ name: a-0 }, { name: a-1 }, { name: b-0 }, { name: other }]
  pools:
    - { name: a, backends: [a-0, a-1], failureMode: open, fallback: [a-0, a-1] }
    - { name: b, backends: [b-0], timeoutMs: 900 }
  routes:
    - { name: w, pathPrefix: /w, pools: [{ pool: a, weight: 70 }, { pool: b, weight: 30 }] }
    - { name: second, listener: other-gw, pathPrefix: /s, pools: [b] }
steps:
  - request: { path: /w, route: w, repeat: 100 }
    expect: { split: { weights: { a: 70, b: 30 } } }
`;

const served = (pod: string): ExchangeResult => ({ status: 200, headers: { 'x-inference-pod': pod }, body: Buffer.alloc(0), latencyMs: 1, aborted: false }) as unknown as ExchangeResult;
const results = (a: number, b: number, other = 0): ExchangeResult[] => [
  ...Array.from({ length: a }, (_, i) => served(i % 2 ? 'a-1' : 'a-0')),
  ...Array.from({ length: b }, () => served('b-0')),
  ...Array.from({ length: other }, () => served('other')),
];

describe('multi-pool run', () => {
  const s = parseScenario(SCENARIO, 's.yaml');
  const split = { weights: { a: 70, b: 30 }, falseFailureProbability: 1e-6 };

  it('builds one route-model entry per (route, pool), with listener indexes and weights', () => {
    const backends = new Map(['a-0', 'a-1', 'b-0', 'other'].map((n, i) => [n, { ip: `127.0.0.${2 + i}`, port: 80, address: `127.0.0.${2 + i}:80` }]));
    const plane = buildPlaneRoute(s, (p) => (p === 'a' ? '127.0.0.1:1' : '127.0.0.1:2'), { backends, epp: '' }, { bodyMode: 'buffered', failureMode: 'close' });
    expect(listenerNames(s)).toEqual(['default', 'other-gw']);
    expect(plane.routes?.map((r) => [r.routeName, r.poolName, r.pathPrefix, r.listener, r.weight, r.eppAddress])).toEqual([
      ['w', 'a', '/w', 0, 70, '127.0.0.1:1'],
      ['w', 'b', '/w', 0, 30, '127.0.0.1:2'],
      ['second', 'b', '/s', 1, 1, '127.0.0.1:2'],
    ]);
    expect(plane.failureMode).toBe('open');
    expect(plane.fallbackEndpoints).toEqual(['127.0.0.2:80', '127.0.0.3:80']);
    expect(plane.routes?.[1]?.timeoutMs).toBe(900);
  });

  it('binomial acceptance: a correct split is inside, a wrong one outside', () => {
    const [lo, hi] = binomialAcceptance(400, 0.7, 5e-7);
    expect(lo).toBeLessThan(280);
    expect(hi).toBeGreaterThan(280);
    expect(lo).toBeGreaterThan(200); // 50/50 would fail
    expect(binomialAcceptance(10, 0, 0.01)).toEqual([0, 0]);
    expect(binomialAcceptance(10, 1, 0.01)).toEqual([10, 10]);
    // Wider with a smaller false-failure probability.
    const [lo2, hi2] = binomialAcceptance(400, 0.7, 1e-12);
    expect(lo2).toBeLessThan(lo);
    expect(hi2).toBeGreaterThan(hi);
  });

  it('checkSplit passes 70/30, fails 50/50, one pool only, and a backend outside the pools', () => {
    expect(checkSplit(split, s, results(280, 120)).mismatches).toEqual([]);
    expect(checkSplit(split, s, results(200, 200)).mismatches.map((m) => m.what)).toEqual(['split: responses served by pool a', 'split: responses served by pool b']);
    expect(checkSplit(split, s, results(400, 0)).mismatches.length).toBe(2);
    expect(checkSplit(split, s, results(280, 119, 1)).mismatches.map((m) => m.what)).toContain('split: responses served by a backend of none of the split pools');
  });

  it('checkSplit compares each pool EPP stream count with what its pool served', () => {
    const j = (n: number): Record<string, unknown>[] => Array.from({ length: n }, () => ({}));
    expect(checkSplit(split, s, results(280, 120), new Map([['a', j(280)], ['b', j(120)]])).mismatches).toEqual([]);
    const m = checkSplit(split, s, results(280, 120), new Map([['a', j(400)], ['b', j(0)]])).mismatches;
    expect(m.map((x) => x.what)).toEqual(["split: streams on pool a's EPP vs responses its pods served", "split: streams on pool b's EPP vs responses its pods served"]);
  });
});
