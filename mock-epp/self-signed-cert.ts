// A throwaway self-signed certificate for TLS tests, made with the `openssl` CLI
// (EC P-256, valid 2 days, SAN IP:127.0.0.1, IP:::1, DNS:localhost). The certificate is
// its own CA, so clients pass it as the root.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EppkitError } from '../core/errors.ts';

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  /** Removes the files. */
  dispose(): void;
}

export function selfSignedCert(commonName = 'localhost'): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'eppkit-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${commonName}`,
        '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'openssl', reason: (e as Error).message.split('\n')[0] ?? String(e) });
  }
  return {
    certFile,
    keyFile,
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
