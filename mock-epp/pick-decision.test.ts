import { describe, expect, it } from 'vitest';
import { parseMockEppConfig, type MockEppConfigInput } from './mock-epp-config.ts';
import { decidePick, directivesToAction, type PickInput } from './pick-decision.ts';
import type { Picker } from './pickers.ts';
import { compileRules } from './rules.ts';

const POOL = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:9000'];

/** A picker that always prefers the candidates in the order given, and records what it was asked. */
function firstPicker(): Picker & { asked: string[][] } {
  const asked: string[][] = [];
  return { name: 'first', asked, order: ({ candidates }) => (asked.push([...candidates]), [...candidates]) };
}

function input(cfg: MockEppConfigInput, over: Partial<PickInput> = {}): PickInput {
  const config = parseMockEppConfig({ endpoints: POOL, ...cfg });
  return { headers: {}, ordinal: 1, body: undefined, subsetHint: undefined, config, rules: compileRules(config.rules), picker: firstPicker(), needsModel: false, ...over };
}

describe('decidePick', () => {
  it('asks the picker over the whole pool, and cuts its order to 1 + fallbacks', () => {
    expect(decidePick(input({})).outcome).toEqual({ kind: 'pick', value: POOL[0], endpoints: [POOL[0]], source: 'picker', picked: POOL[0] });
    expect(decidePick(input({ fallbacks: 1 })).outcome).toMatchObject({ value: `${POOL[0]},${POOL[1]}`, endpoints: POOL.slice(0, 2) });
  });

  it('a rule endpoint is sent literally and does not ask the picker', () => {
    const i = input({ rules: [{ name: 'r', match: { headers: { 'x-t': 'a' } }, action: { endpoint: ['x:1', 'y:2'] } }] }, { headers: { 'x-t': 'a' } });
    const d = decidePick(i);
    expect(d.rule).toBe('r');
    expect(d.outcome).toEqual({ kind: 'pick', value: 'x:1,y:2', endpoints: ['x:1', 'y:2'], source: 'rule' });
    expect((i.picker as ReturnType<typeof firstPicker>).asked).toEqual([]);
  });

  it('directives win over the rule, report what they could not read, and are off with directives: false', () => {
    const headers = { 'x-eppkit-endpoint': 'd:1', 'x-eppkit-delay-ms': 'soon', 'x-eppkit-hang': 'yes' };
    const rules = [{ action: { endpoint: 'r:1', delay: { ms: 5 } } }];
    const d = decidePick(input({ rules }, { headers }));
    expect(d.outcome).toMatchObject({ value: 'd:1', source: 'directive' });
    expect(d.directives).toEqual(headers);
    expect(d.problems).toEqual(["x-eppkit-delay-ms: not a number of milliseconds 'soon'"]);
    expect(d.action.hang).toEqual({ phase: 'request_headers' });
    expect(d.action.delay).toEqual({ ms: 5, phase: 'request_headers' });
    const off = decidePick(input({ rules, directives: false }, { headers }));
    expect(off.outcome).toMatchObject({ value: 'r:1', source: 'rule' });
    expect(off.directives).toBeUndefined();
  });

  it('narrows by the subset hint, then the conformance header (ip or ip:port); none left is no-endpoint', () => {
    const picker = firstPicker();
    const hinted = decidePick(input({}, { subsetHint: [POOL[1] as string, POOL[2] as string, '9.9.9.9:1'], headers: { 'test-epp-endpoint-selection': '10.0.0.3' }, picker }));
    expect(picker.asked).toEqual([[POOL[2]]]);
    expect(hinted.outcome).toMatchObject({ value: POOL[2], source: 'conformance-header' });
    expect(decidePick(input({}, { subsetHint: ['9.9.9.9:1'] })).outcome).toEqual({ kind: 'no-endpoint', details: 'no pool endpoint is in the subset hint' });
    expect(decidePick(input({}, { headers: { 'test-epp-endpoint-selection': '1.1.1.1' } })).outcome.kind).toBe('no-endpoint');
    expect(decidePick(input({ endpoints: [] })).outcome).toEqual({ kind: 'no-endpoint', details: 'the pool has no endpoints' });
    // With an empty pool, the hint itself is the candidates.
    expect(decidePick(input({ endpoints: [] }, { subsetHint: ['9.9.9.9:1'] })).outcome).toMatchObject({ value: '9.9.9.9:1' });
  });

  it('an empty selection header: the whole pool (lightweight EPP) or no one (full EPP)', () => {
    const headers = { 'test-epp-endpoint-selection': ' , ' };
    expect(decidePick(input({ emptySelection: 'whole-pool' }, { headers })).outcome).toMatchObject({ kind: 'pick', source: 'picker' });
    expect(decidePick(input({ emptySelection: 'no-endpoint' }, { headers })).outcome.kind).toBe('no-endpoint');
  });

  it('reads the model of the body only when something needs it', () => {
    const rules = [{ match: { model: 'm1' }, action: { endpoint: 'm:1' } }];
    const body = Buffer.from('{"model":"m1"}');
    expect(decidePick(input({ rules }, { body, needsModel: true })).outcome).toMatchObject({ value: 'm:1' });
    expect(decidePick(input({ rules }, { body, needsModel: false })).outcome).toMatchObject({ source: 'picker' });
  });
});

describe('directivesToAction', () => {
  it('puts every fault at the phase x-eppkit-phase names, and reports bad values', () => {
    const { action, problems } = directivesToAction({ 'x-eppkit-phase': 'response-headers', 'x-eppkit-immediate': '503', 'x-eppkit-grpc-error': 'NOPE', 'x-other': '1' });
    expect(action).toEqual({ immediate: { status: 503, phase: 'response_headers' } });
    expect(problems).toEqual(["x-eppkit-grpc-error: not a gRPC status 'NOPE'"]);
    expect(directivesToAction({ 'x-eppkit-phase': 'later' }).problems).toEqual(["x-eppkit-phase: unknown phase 'later'"]);
  });
});
