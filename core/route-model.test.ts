import { describe, expect, it } from 'vitest';
import { isMultiRoute, listenerCount, planeRoutes, routeRules, routeWithDefaults, weightPercents, byLongestPrefix, type RouteModel } from './route-model.ts';

const entry = (o: Partial<RouteModel>): RouteModel => routeWithDefaults({ eppAddress: '127.0.0.1:9', ...o });

describe('route model: several routes', () => {
  it('a single route is its own only entry, on one listener', () => {
    const r = entry({ pathPrefix: '/x' });
    expect(planeRoutes(r)).toEqual([r]);
    expect(isMultiRoute(r)).toBe(false);
    expect(listenerCount(r)).toBe(1);
    expect(routeRules(r)).toEqual([{ listener: 0, pathPrefix: '/x', pools: [r] }]);
  });

  it('groups entries of the same listener and prefix into one weighted rule, keeps listeners apart', () => {
    const a = entry({ pathPrefix: '/w', poolName: 'a', weight: 70, eppAddress: '127.0.0.1:1' });
    const b = entry({ pathPrefix: '/w', poolName: 'b', weight: 30, eppAddress: '127.0.0.1:2' });
    const c = entry({ pathPrefix: '/w', poolName: 'c', listener: 1 });
    const d = entry({ pathPrefix: '/', poolName: 'd' });
    const plane: RouteModel = { ...a, routes: [a, b, c, d] };
    expect(isMultiRoute(plane)).toBe(true);
    expect(listenerCount(plane)).toBe(2);
    const rules = routeRules(plane);
    expect(rules.map((r) => [r.listener, r.pathPrefix, r.pools.map((p) => p.poolName)])).toEqual([
      [0, '/w', ['a', 'b']],
      [1, '/w', ['c']],
      [0, '/', ['d']],
    ]);
    expect(byLongestPrefix(rules).at(-1)?.pathPrefix).toBe('/');
    // The model stays plain data (no self reference).
    expect(() => JSON.stringify(plane)).not.toThrow();
  });

  it('turns weights into whole percentages that sum to 100', () => {
    const w = (...ws: number[]): number[] => weightPercents(ws.map((x) => entry({ weight: x })));
    expect(w(70, 30)).toEqual([70, 30]);
    expect(w(1, 1, 1)).toEqual([34, 33, 33]);
    expect(w(2, 1)).toEqual([67, 33]);
    expect(w(1)).toEqual([100]);
    for (const ws of [[1, 2, 3, 4], [999, 1], [5, 5, 5, 5, 5, 5, 5]]) expect(w(...ws).reduce((a, b) => a + b, 0)).toBe(100);
  });
});
