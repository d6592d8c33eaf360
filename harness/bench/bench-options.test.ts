import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EppkitError } from '../../core/errors.ts';
import { parseBenchOptions, parseDuration } from './bench-options.ts';

function problems(fn: () => unknown): EppkitError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EppkitError) return e;
    throw e;
  }
  throw new Error('expected an EppkitError');
}

describe('parseDuration', () => {
  it('reads units, compounds and plain seconds', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('2')).toBe(2000);
    expect(parseDuration(1.5)).toBe(1500);
  });
  it('refuses what is not a duration', () => {
    expect(parseDuration('10 parsecs')).toBeUndefined();
    expect(parseDuration('s')).toBeUndefined();
    expect(parseDuration('10s5')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
  });
});

describe('parseBenchOptions', () => {
  it('fills the documented defaults', () => {
    const o = parseBenchOptions({});
    expect(o).toMatchObject({
      mode: 'data-planes',
      dataPlanes: ['all'],
      direct: true,
      eppDelayMs: [0],
      executor: 'constant-vus',
      connections: 32,
      duration: 10_000,
      warmup: 2_000,
      bodyBytes: 0,
      bodyMode: 'buffered',
      timeout: 10_000,
      path: '/bench',
      reportDir: 'reports/bench',
      thresholds: [],
    });
    expect(o.workers).toBeGreaterThanOrEqual(1);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('turns comma lists from flags into lists and --rate into the arrival-rate executor', () => {
    const o = parseBenchOptions({ dataPlanes: 'node-proxy,nginx', eppDelayMs: '0,5,5', rate: '2000', connections: '64', threshold: undefined });
    expect(o.dataPlanes).toEqual(['node-proxy', 'nginx']);
    expect(o.eppDelayMs).toEqual([0, 5]);
    expect(o.executor).toBe('constant-arrival-rate');
    expect(o.rate).toBe(2000);
    expect(o.connections).toBe(64);
  });

  it('bbr: a 1 KiB body by default, refused without a body or with another mode or a url', () => {
    expect(parseBenchOptions({ bbr: true }).bodyBytes).toBe(1024);
    expect(parseBenchOptions({ bbr: true, bodyBytes: '65536' }).bodyBytes).toBe(65536);
    expect(problems(() => parseBenchOptions({ bbr: true, bodyBytes: 0 })).format()).toMatch(/bbr needs a body/);
    expect(problems(() => parseBenchOptions({ bbr: true, mode: 'mock-epp' })).format()).toMatch(/bbr measures data planes/);
    expect(problems(() => parseBenchOptions({ bbr: true, url: 'http://127.0.0.1:1/' })).format()).toMatch(/does not combine with url/);
  });

  it('parses thresholds at parse time', () => {
    const o = parseBenchOptions({ thresholds: ['p99<5', 'errors<0.1%'] });
    expect(o.thresholds.map((t) => [t.metric, t.op, t.value, t.percent])).toEqual([
      ['p99', '<', 5, false],
      ['errors', '<', 0.001, true],
    ]);
  });

  it('nonblocking defaults to 500 connections, no direct, one delay', () => {
    const o = parseBenchOptions({ mode: 'nonblocking', dataPlanes: 'nginx', eppDelayMs: '50' });
    expect(o).toMatchObject({ connections: 500, direct: false, eppDelayMs: [50], executor: 'constant-vus' });
    // Without --epp-delay-ms: 50 ms, as documented (it was refused as "0" before).
    expect(parseBenchOptions({ mode: 'nonblocking', dataPlanes: 'nginx' }).eppDelayMs).toEqual([50]);
    expect(parseBenchOptions({}).eppDelayMs).toEqual([0]);
  });

  it('reports every problem at once, with its path', () => {
    const e = problems(() =>
      parseBenchOptions({ duration: 'forever', connections: '0', bodyMode: 'chunky', thresholds: ['p99<5', 'latency<3'], executor: 'constant-arrival-rate', bogus: 1 }),
    );
    expect(e.code).toBe('EPPKIT_CONFIG_INVALID');
    const paths = e.problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['duration', 'connections', 'bodyMode', 'thresholds[1]', 'bogus']));
    expect(e.problems.find((p) => p.path === 'thresholds[1]')?.message).toMatch(/unknown metric "latency"/);
    // Cross-field problems come once every field is valid (zod checks objects after fields).
    const e2 = problems(() => parseBenchOptions({ executor: 'constant-arrival-rate' }));
    expect(e2.problems.map((p) => p.path)).toEqual(['rate']);
  });

  it('refuses nonblocking without an EPP delay', () => {
    const e = problems(() => parseBenchOptions({ mode: 'nonblocking', eppDelayMs: '0' }));
    expect(e.problems.map((p) => p.path)).toContain('eppDelayMs');
  });

  it('reads a YAML bench file, flags win, and names the file line of a bad value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-opts-'));
    const file = join(dir, 'bench.yaml');
    writeFileSync(file, 'dataPlanes: [node-proxy, envoy]\nconnections: 8\nduration: 3s\nthresholds:\n  - p99<5\n');
    const o = parseBenchOptions({ connections: '16' }, file);
    expect(o.dataPlanes).toEqual(['node-proxy', 'envoy']);
    expect(o.connections).toBe(16);
    expect(o.duration).toBe(3000);

    writeFileSync(file, 'connections: 8\nwarmup: soon\n');
    const e = problems(() => parseBenchOptions({}, file));
    expect(e.problems).toEqual([expect.objectContaining({ path: 'warmup', line: 2 })]);
    expect(e.message).toContain(file);
  });
  it('takes the load client from flags or the file: eppkit by default, autocannon on request, never in mock-epp', () => {
    expect(parseBenchOptions({}).client).toBe('eppkit');
    expect(parseBenchOptions({ client: 'autocannon', rate: '200' })).toMatchObject({ client: 'autocannon', executor: 'constant-arrival-rate', rate: 200 });
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bench-opts-'));
    writeFileSync(join(dir, 'b.yaml'), 'client: autocannon\nduration: 2s\n');
    expect(parseBenchOptions({}, join(dir, 'b.yaml')).client).toBe('autocannon');
    expect(problems(() => parseBenchOptions({ client: 'wrk' })).format()).toMatch(/client/);
    expect(problems(() => parseBenchOptions({ mode: 'mock-epp', client: 'autocannon' })).format()).toMatch(/client: mock-epp speaks ext_proc/);
  });
});
