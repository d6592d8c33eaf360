import { describe, expect, it } from 'vitest';
import { evaluateThresholds, parseThreshold, type Threshold, type ThresholdSubject } from './thresholds.ts';

const t = (expr: string): Threshold => {
  const r = parseThreshold(expr);
  if (typeof r === 'string') throw new Error(r);
  return r;
};

const subject = (target: string, over: Partial<ThresholdSubject> = {}): ThresholdSubject => ({
  target,
  latencyMs: { p50: 1, p90: 2, p99: 4, p999: 8, max: 10, min: 0.5, mean: 1.2 },
  rps: 5000,
  requests: 10_000,
  errors: 5,
  non2xx: 20,
  ...over,
});

describe('parseThreshold', () => {
  it('reads metric, operator, value and unit', () => {
    expect(t('p99<5')).toMatchObject({ metric: 'p99', op: '<', value: 5, percent: false });
    expect(t(' rps >= 5000 ')).toMatchObject({ metric: 'rps', op: '>=', value: 5000 });
    expect(t('errors<0.1%')).toMatchObject({ metric: 'errors', value: 0.001, percent: true });
    expect(t('max<=2s')).toMatchObject({ metric: 'max', value: 2000 });
    expect(t('p50<500us')).toMatchObject({ metric: 'p50', value: 0.5 });
    expect(t('avg<3')).toMatchObject({ metric: 'mean' });
    expect(t('nginx:hop<1ms')).toMatchObject({ scope: 'nginx', metric: 'hop', value: 1 });
  });

  it('explains what is wrong', () => {
    expect(parseThreshold('p99 is small')).toMatch(/not a threshold/);
    expect(parseThreshold('latency<5')).toMatch(/unknown metric "latency"/);
    expect(parseThreshold('rps>5%')).toMatch(/only applies to errors, non2xx and bound/);
    expect(parseThreshold('bound>5ms')).toMatch(/bound is a percentage/);
    expect(parseThreshold('rps>5ms')).toMatch(/only applies to latency/);
  });
});

describe('evaluateThresholds', () => {
  it('passes and fails per target, with the actual value', () => {
    const r = evaluateThresholds([t('p99<5'), t('rps>=6000')], [subject('direct'), subject('nginx', { latencyMs: { ...subject('x').latencyMs, p99: 7 } })]);
    expect(r.map((x) => [x.target, x.expr, x.ok, x.actual])).toEqual([
      ['direct', 'p99<5', true, 4],
      ['nginx', 'p99<5', false, 7],
      ['direct', 'rps>=6000', false, 5000],
      ['nginx', 'rps>=6000', false, 5000],
    ]);
  });

  it('computes error shares over all attempts, non-2xx over answered requests', () => {
    const [errs, non2xx] = evaluateThresholds([t('errors<0.1%'), t('non2xx<=0.2%')], [subject('envoy')]);
    expect(errs).toMatchObject({ ok: true, actual: (5 / 10_005) * 100 });
    expect(non2xx).toMatchObject({ ok: true, actual: 0.2 });
    expect(evaluateThresholds([t('errors==0')], [subject('envoy')])[0]).toMatchObject({ ok: false, actual: 5 });
  });

  it('scopes to a data plane, including its per-delay runs', () => {
    const r = evaluateThresholds([t('node-proxy:p50<2')], [subject('direct'), subject('node-proxy@0ms'), subject('node-proxy@5ms', { latencyMs: { ...subject('x').latencyMs, p50: 6 } })]);
    expect(r.map((x) => [x.target, x.ok])).toEqual([
      ['node-proxy@0ms', true],
      ['node-proxy@5ms', false],
    ]);
  });

  it('hop skips direct, fails without a baseline, and a skipped target is not a failure', () => {
    const r = evaluateThresholds([t('hop<1'), t('nginx:p99<1')], [subject('direct'), subject('envoy', { hopMs: 0.4 }), subject('node-proxy')]);
    expect(r).toEqual([
      { expr: 'hop<1', target: 'envoy', actual: 0.4, ok: true },
      expect.objectContaining({ expr: 'hop<1', target: 'node-proxy', ok: false }),
      expect.objectContaining({ expr: 'nginx:p99<1', ok: true, note: expect.stringMatching(/not evaluated/) }),
    ]);
  });
});

describe('nonblocking thresholds', () => {
  it('bound is a percentage with or without %, blocking a multiple; both only exist in nonblocking runs', () => {
    expect(t('bound>=50%')).toMatchObject({ metric: 'bound', value: 50, percent: false });
    expect(t('bound>=50')).toMatchObject({ metric: 'bound', value: 50 });
    const r = evaluateThresholds([t('bound>=50%'), t('blocking>10')], [subject('nginx', { boundPct: 6.8, blockingX: 34.2 }), subject('envoy')]);
    expect(r.map((x) => [x.target, x.expr, x.ok, x.actual])).toEqual([
      ['nginx', 'bound>=50%', false, 6.8],
      ['envoy', 'bound>=50%', false, undefined],
      ['nginx', 'blocking>10', true, 34.2],
      ['envoy', 'blocking>10', false, undefined],
    ]);
    expect(r[1]?.note).toMatch(/only measured by eppkit bench nonblocking/);
  });
});
