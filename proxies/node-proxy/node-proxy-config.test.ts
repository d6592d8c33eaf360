import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EppkitError } from '../../core/errors.ts';
import { ROUTE_DEFAULTS } from '../../core/route-model.ts';
import { resolveNodeProxyConfig } from './node-proxy-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'np-config-'));
function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof EppkitError) return e.problems.map((p) => `${p.line ?? '-'} ${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('no error');
}

describe('resolveNodeProxyConfig', () => {
  it('applies the documented defaults', () => {
    const c = resolveNodeProxyConfig({ eppAddress: '127.0.0.1:9002' });
    expect(c.listen).toBe('127.0.0.1:0');
    expect(c.workers).toBe(1);
    expect(c.shim).toBe(false);
    expect(c.maxHeaderBytes).toBe(16384);
    expect(c.upstreamConnectTimeoutMs).toBe(1000);
    expect(c.upstreamTimeoutMs).toBe(0);
    expect(c.eppClient).toBe('wire');
    expect(c.routes).toEqual([{ ...ROUTE_DEFAULTS, eppAddress: '127.0.0.1:9002' }]);
    expect(Object.isFrozen(c.routes[0])).toBe(true);
  });

  it('maps every RouteModel key from a config file', () => {
    const f = file(
      'all.yaml',
      [
        'pathPrefix: /v1',
        'eppAddress: 127.0.0.1:9002',
        'eppTls: { caFile: /ca.pem, serverName: epp.local, insecureSkipVerify: false }',
        'failureMode: open',
        'timeoutMs: 50',
        'bodyMode: streamed',
        'fallbackEndpoints: [10.0.0.1:80]',
        'responseProcessing: true',
        'maxBodyBytes: 1000',
        'allow: [10.0.0.0/8]',
        'subsetHint: [10.0.0.1:80]',
      ].join('\n'),
    );
    const [r] = resolveNodeProxyConfig({ configFile: f }).routes;
    expect(r).toEqual({
      pathPrefix: '/v1',
      eppAddress: '127.0.0.1:9002',
      eppTls: { caFile: '/ca.pem', serverName: 'epp.local', insecureSkipVerify: false },
      failureMode: 'open',
      timeoutMs: 50,
      bodyMode: 'streamed',
      fallbackEndpoints: ['10.0.0.1:80'],
      responseProcessing: true,
      maxBodyBytes: 1000,
      allow: ['10.0.0.0/8'],
      subsetHint: ['10.0.0.1:80'],
    });
  });

  it('precedence: routes[] entry > flag > file top level > default; routes ordered longest prefix first', () => {
    const f = file('prec.yaml', ['timeoutMs: 10', 'failureMode: open', 'routes:', '  - { pathPrefix: /, eppAddress: 127.0.0.1:1 }', '  - { pathPrefix: /a/b, eppAddress: 127.0.0.1:2, timeoutMs: 30 }'].join('\n'));
    const c = resolveNodeProxyConfig({ configFile: f, timeoutMs: 20 });
    expect(c.routes.map((r) => [r.pathPrefix, r.timeoutMs, r.failureMode])).toEqual([
      ['/a/b', 30, 'open'],
      ['/', 20, 'open'],
    ]);
  });

  it('reports every problem with path and line', () => {
    const f = file('bad.yaml', ['workers: 0', 'routes:', '  - { pathPrefix: /x, eppAddress: nope }', '  - { pathPrefix: /x, eppAddress: 127.0.0.1:1 }'].join('\n'));
    const p = problems(() => resolveNodeProxyConfig({ configFile: f }));
    expect(p.some((x) => x.startsWith('1 workers'))).toBe(true);
    expect(p.some((x) => x.startsWith('3 routes[0].eppAddress'))).toBe(true);
  });

  it('reports a missing EPP address and a repeated prefix', () => {
    expect(problems(() => resolveNodeProxyConfig({}))).toEqual(['- eppAddress: no EPP address: give --epp host:port or eppAddress in the config file']);
    const p = problems(() =>
      resolveNodeProxyConfig({ routes: [{ pathPrefix: '/x', eppAddress: '127.0.0.1:1' }, { pathPrefix: '/x', eppAddress: '127.0.0.1:1' }] }),
    );
    expect(p[0]).toMatch(/routes\[1\]\.pathPrefix: path prefix \/x repeats routes\[0\]/);
  });

  it('shim mode needs no EPP address', () => {
    const c = resolveNodeProxyConfig({ shim: true, timeoutMs: 99 });
    expect(c.routes).toEqual([]);
    expect(c.shimRoute.timeoutMs).toBe(99);
  });

  it('bbr: true takes the defaults, an object overrides them per route, absent is off', () => {
    const c = resolveNodeProxyConfig({
      eppAddress: '127.0.0.1:1',
      bbr: true,
      routes: [{ pathPrefix: '/a' }, { pathPrefix: '/b', bbr: { header: 'X-Model', requireModel: true } }, { pathPrefix: '/c', bbr: false }],
    });
    const by = (p: string) => c.routes.find((r) => r.pathPrefix === p);
    expect(by('/a')?.bbr).toEqual({ header: 'X-Gateway-Model-Name', maxBodyBytes: 16 * 1024 * 1024, requireModel: false });
    expect(by('/b')?.bbr).toEqual({ header: 'X-Model', maxBodyBytes: 16 * 1024 * 1024, requireModel: true });
    expect(by('/c')?.bbr).toBeUndefined();
    expect(problems(() => resolveNodeProxyConfig({ eppAddress: '127.0.0.1:1', bbr: { header: 'bad header' } as never }))[0]).toMatch(/bbr/);
  });
});
