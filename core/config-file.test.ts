import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseText, validate } from './config-file.ts';
import { EppkitError, combineErrors, loadAll } from './errors.ts';

const schema = z.object({ port: z.number().int(), hosts: z.array(z.string()) }).strict();

function problemsOf(fn: () => unknown): EppkitError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EppkitError) return e;
    throw e;
  }
  throw new Error('expected an EppkitError');
}

describe('config files', () => {
  it('reports every schema problem at once, each with its path and line', () => {
    const text = 'port: "80"\nhosts:\n  - a\n  - 7\nextra: true\n';
    const { data, lineOf } = parseText(text, 'f.yaml');
    const err = problemsOf(() => validate(schema, data, 'f.yaml', { lineOf }));
    const byPath = Object.fromEntries(err.problems.map((p) => [p.path, p.line]));
    expect(byPath).toMatchObject({ port: 1, 'hosts[1]': 4 });
    expect(err.problems.some((p) => p.message.includes('extra'))).toBe(true);
    expect(err.format()).toContain('f.yaml');
  });

  it('names the line of a YAML syntax error', () => {
    const err = problemsOf(() => parseText('a: 1\nb: [1,\nc: 2\n', 'bad.yaml'));
    expect(err.code).toBe('EPPKIT_CONFIG_INVALID');
    expect(err.problems[0]?.line).toBeGreaterThanOrEqual(2);
    expect(err.problems[0]?.message).not.toMatch(/at line/);
  });

  it('returns a deeply frozen value', () => {
    const v = validate(schema, { port: 1, hosts: ['x'] }, 'inline');
    expect(Object.isFrozen(v.hosts)).toBe(true);
  });

  it('reports an unknown key at its own path and line, with the known key it is a typo of', () => {
    const text = 'port: 80\nhosts:\n  - a\nhsots: [b]\nextra: true\n';
    const { data, lineOf } = parseText(text, 'f.yaml');
    const err = problemsOf(() => validate(schema, data, 'f.yaml', { lineOf }));
    expect(err.problems).toEqual([
      { path: 'hsots', line: 4, message: 'unknown key "hsots" (did you mean "hosts"?)' },
      { path: 'extra', line: 5, message: 'unknown key "extra"; known keys: port, hosts' },
    ]);
    // The known keys once per map, at its first unknown key in the file.
    const two = parseText('zzz: 1\nport: 80\nhosts: []\nyyy: 2\n', 'g.yaml');
    expect(problemsOf(() => validate(schema, two.data, 'g.yaml', { lineOf: two.lineOf })).problems.map((p) => p.message)).toEqual([
      'unknown key "zzz"; known keys: port, hosts',
      'unknown key "yyy" (known keys as above)',
    ]);
  });

  it('lists the valid values of an enum, and the close one', () => {
    const s = z.strictObject({ action: z.enum(['stop-epp', 'kill-epp', 'sleep']) });
    const err = problemsOf(() => validate(s, { action: 'stop-ep' }, 'x'));
    expect(err.problems).toEqual([{ path: 'action', message: '"stop-ep" is not one of: "stop-epp", "kill-epp", "sleep" (did you mean "stop-epp"?)' }]);
    expect(problemsOf(() => validate(s, {}, 'x')).problems[0]?.message).toBe('required: one of: "stop-epp", "kill-epp", "sleep"');
  });

  it('reports a union by the member the input was meant to be, never as a bare "Invalid input"', () => {
    const step = z.union([
      z.strictObject({ request: z.strictObject({ path: z.string() }), name: z.string().optional() }),
      z.strictObject({ action: z.enum(['stop-epp', 'sleep']), ms: z.number().optional() }),
      z.strictObject({ parallel: z.array(z.unknown()) }),
    ]);
    const s = z.strictObject({ steps: z.array(step) });
    const text = 'steps:\n  - action: stop-ep\n  - request: { path: 5 }\n  - hello: 1\n  - { requst: { path: / } }\n  - 7\n';
    const { data, lineOf } = parseText(text, 'f.yaml');
    const err = problemsOf(() => validate(s, data, 'f.yaml', { lineOf }));
    expect(err.format()).not.toMatch(/Invalid input/);
    expect(err.problems).toEqual([
      { path: 'steps[0].action', line: 2, message: '"stop-ep" is not one of: "stop-epp", "sleep" (did you mean "stop-epp"?)' },
      { path: 'steps[1].request.path', line: 3, message: 'must be a string, not number 5' },
      { path: 'steps[2].hello', line: 4, message: 'unknown key "hello"; known keys: request, name, action, ms, parallel' },
      { path: 'steps[2]', line: 4, message: 'needs one of: request, action, parallel' },
      // The typo names the key; "request: required" beside it would be noise.
      { path: 'steps[3].requst', line: 5, message: 'unknown key "requst" (did you mean "request"?)' },
      { path: 'steps[4]', line: 6, message: 'must be a map, not number 7' },
    ]);
  });

  it('reports the problems of several files as one error, each problem with its file', () => {
    const fileError = (file: string, text: string): EppkitError => {
      const { data, lineOf } = parseText(text, file);
      return problemsOf(() => validate(schema, data, file, { lineOf, code: 'EPPKIT_SCENARIO_INVALID' }));
    };
    const a = fileError('a.yaml', 'port: x\nhosts: []\n');
    const b = fileError('b.yaml', 'port: 1\nhost: []\n');
    const both = combineErrors([a, b]);
    expect(both.code).toBe('EPPKIT_SCENARIO_INVALID');
    expect(both.exitCode).toBe(2);
    expect(both.problems.map((p) => [p.file, p.path])).toEqual([['a.yaml', 'port'], ['b.yaml', 'host']]);
    expect(both.format()).toBe(
      [
        'EPPKIT_SCENARIO_INVALID: invalid scenario file a.yaml, b.yaml: 2 problems',
        '  a.yaml',
        '    - line 1, port: must be a number, not the string "x"',
        '  b.yaml',
        '    - line 2, host: unknown key "host" (did you mean "hosts"?)',
      ].join('\n'),
    );
    // Different kinds of input: one code for all, and every loader ran.
    let ran = 0;
    const mixed = problemsOf(() =>
      loadAll(
        () => { ran++; throw new EppkitError('EPPKIT_PLANE_INVALID', { source: 'p.yaml' }, [{ path: 'name', message: 'bad' }]); },
        () => { ran++; throw a; },
      ),
    );
    expect(ran).toBe(2);
    expect(mixed.code).toBe('EPPKIT_INPUT_INVALID');
    expect(mixed.problems.map((p) => p.file)).toEqual(['p.yaml', 'a.yaml']);
    expect(loadAll(() => 1, () => 'x')).toEqual([1, 'x']);
    // A headline that needs more than the file names ("cannot read {source}: {reason}") is not shared.
    const unreadable = combineErrors([new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: 'x.yaml', reason: 'ENOENT' }), new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: 'y.yaml', reason: 'EACCES' })]);
    expect(unreadable.code).toBe('EPPKIT_INPUT_INVALID');
    expect(unreadable.format()).not.toContain('{');
    expect(unreadable.problems.map((p) => [p.file, p.message])).toEqual([['x.yaml', 'cannot read x.yaml: ENOENT'], ['y.yaml', 'cannot read y.yaml: EACCES']]);
  });
});
