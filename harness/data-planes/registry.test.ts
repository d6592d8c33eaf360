import { describe, expect, it } from 'vitest';
import { EppkitError } from '../../core/errors.ts';
import { findDriver } from './registry.ts';

describe('data plane registry', () => {
  it('names the close data plane of a typo, and every known one', () => {
    expect(findDriver('node-proxy').name).toBe('node-proxy');
    let e: unknown;
    try {
      findDriver('nod-proxy');
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(EppkitError);
    expect((e as EppkitError).exitCode).toBe(2);
    expect((e as EppkitError).message).toMatch(/^unknown data plane "nod-proxy" \(did you mean "node-proxy"\?\); known: .*node-proxy/);
  });
});
