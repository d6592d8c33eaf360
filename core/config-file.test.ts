import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseText, validate } from './config-file.ts';
import { EppkitError } from './errors.ts';

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
});
