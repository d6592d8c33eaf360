import { describe, expect, it } from 'vitest';
import { isEppkitError } from '../../core/errors.ts';
import { resolveNodeProxyConfig } from './node-proxy-config.ts';
import { compileRoute, matchRoute } from './proxy-context.ts';

describe('node-proxy weighted routes', () => {
  const cfg = resolveNodeProxyConfig({
    routes: [
      { pathPrefix: '/w', eppAddress: '127.0.0.1:1', weight: 70 },
      { pathPrefix: '/w', eppAddress: '127.0.0.1:2', weight: 30 },
      { pathPrefix: '/', eppAddress: '127.0.0.1:3' },
    ],
  });
  const routes = cfg.routes.map(compileRoute);

  it('draws among the routes of a prefix in proportion to their weights', () => {
    const epp = (x: number): string | undefined => matchRoute(routes, '/w/v1', () => x)?.route.eppAddress;
    expect(epp(0)).toBe('127.0.0.1:1');
    expect(epp(0.69)).toBe('127.0.0.1:1');
    expect(epp(0.71)).toBe('127.0.0.1:2');
    expect(epp(0.9999)).toBe('127.0.0.1:2');
    // Other prefixes are not part of the draw.
    expect(matchRoute(routes, '/other', () => 0.99)?.route.eppAddress).toBe('127.0.0.1:3');
  });

  it('refuses a repeated prefix unless every route of it has a weight', () => {
    try {
      resolveNodeProxyConfig({ routes: [{ pathPrefix: '/w', eppAddress: '127.0.0.1:1', weight: 1 }, { pathPrefix: '/w', eppAddress: '127.0.0.1:2' }] });
      expect.unreachable();
    } catch (e) {
      expect(isEppkitError(e) && e.problems.map((p) => p.path)).toEqual(['routes[1].pathPrefix']);
    }
  });
});
