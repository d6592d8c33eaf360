import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EppkitError } from '../../core/errors.ts';
import { eppTlsOptions } from './epp-tls-options.ts';

describe('eppTlsOptions', () => {
  it('verifies the configured server name, else the host when it is a name, never an IP', () => {
    expect(eppTlsOptions({ serverName: 'epp.test' }, '127.0.0.1').servername).toBe('epp.test');
    expect(eppTlsOptions({}, 'epp.internal').servername).toBe('epp.internal');
    expect(eppTlsOptions({}, '::1').servername).toBeUndefined();
    expect(eppTlsOptions({}, '127.0.0.1').ALPNProtocols).toEqual(['h2']);
  });

  it('reads the CA file; one it cannot read is EPPKIT_CONFIG_UNREADABLE naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-tls-'));
    writeFileSync(join(dir, 'ca.pem'), 'PEM');
    expect(eppTlsOptions({ caFile: join(dir, 'ca.pem') }, 'h').ca?.toString()).toBe('PEM');
    const missing = join(dir, 'absent.pem');
    let err: unknown;
    try {
      eppTlsOptions({ caFile: missing }, 'h');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EppkitError);
    expect((err as EppkitError).code).toBe('EPPKIT_CONFIG_UNREADABLE');
    expect((err as EppkitError).details).toMatchObject({ source: missing, reason: 'ENOENT' });
  });

  it('insecureSkipVerify turns off both the chain and the name check', () => {
    const o = eppTlsOptions({ insecureSkipVerify: true }, 'h');
    expect(o.rejectUnauthorized).toBe(false);
    expect(o.checkServerIdentity?.('h', {} as never)).toBeUndefined();
    expect(eppTlsOptions({}, 'h').rejectUnauthorized).toBeUndefined();
  });
});
