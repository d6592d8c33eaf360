import { describe, expect, it } from 'vitest';
import { EppkitError } from './errors.ts';
import { parseEnv } from './env.ts';

describe('environment', () => {
  it('reads the EPPKIT_* variables, typed, empty = unset, frozen', () => {
    const e = parseEnv({ EPPKIT_EXTERNAL_EPP_PORT: '9002', EPPKIT_DOCKER_NO_REFRESH: '1', EPPKIT_HOME: '', EPPKIT_LOG_LEVEL: ' warn ', PATH: '/bin' });
    expect(e).toEqual({ EPPKIT_EXTERNAL_EPP_PORT: 9002, EPPKIT_DOCKER_NO_REFRESH: true, EPPKIT_LOG_LEVEL: 'warn' });
    expect(Object.isFrozen(e)).toBe(true);
  });

  it('reports every bad variable at once, as an input: source environment, path = the name', () => {
    let err: unknown;
    try {
      parseEnv({ EPPKIT_EXTERNAL_EPP_PORT: '99999', EPPKIT_LOG_LEVEL: 'loud', EPPKIT_EXTERNAL_URL: 'not a url', EPPKIT_EXTERNAL_BODY_MODE: 'chunked' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EppkitError);
    const text = (err as EppkitError).format();
    expect(text).toMatch(/^EPPKIT_CONFIG_INVALID: invalid configuration in environment/);
    for (const v of ['EPPKIT_EXTERNAL_EPP_PORT', 'EPPKIT_LOG_LEVEL', 'EPPKIT_EXTERNAL_URL', 'EPPKIT_EXTERNAL_BODY_MODE']) expect(text).toContain(`  - ${v}: `);
    expect(text).toContain('must be a port 1-65535');
    expect(text).toMatch(/EPPKIT_LOG_LEVEL: .*"info"/);
  });
});
