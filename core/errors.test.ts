import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS } from './errors.ts';

describe('error registry', () => {
  it('documents every code in docs/errors.md, with its exit code', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, spec] of Object.entries(ERRORS)) expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${spec.exit} \\|`));
  });
});
