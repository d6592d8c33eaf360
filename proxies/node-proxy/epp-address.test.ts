import { describe, expect, it } from 'vitest';
import { eppAddress } from './epp-address.ts';

describe('eppAddress', () => {
  it('reads host and port as the config checked them, port 80 included', () => {
    // `new URL('http://h:80')` has no port: the address was read as port 0 before.
    expect(eppAddress('epp.internal:80', undefined)).toMatchObject({ host: 'epp.internal', port: 80, tls: undefined });
    expect(eppAddress('[::1]:9002', undefined)).toMatchObject({ host: '::1', port: 9002 });
    expect(eppAddress('127.0.0.1:443', { serverName: 'epp.test' }).tls?.servername).toBe('epp.test');
  });
});
