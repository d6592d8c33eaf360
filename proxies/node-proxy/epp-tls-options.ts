// The TLS options of a connection to an EPP, for both lean clients (epp-wire-client.ts,
// epp-h2-client.ts): its CA, the name its certificate must carry, or no verification at all.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { EppkitError } from '../../core/errors.ts';
import type { EppTls } from '../../core/route-model.ts';

/** `host` is the address's host: the name verified when no serverName is given and it is not an IP. */
export function eppTlsOptions(t: EppTls, host: string): ConnectionOptions {
  const o: ConnectionOptions = { ALPNProtocols: ['h2'] };
  if (t.caFile) {
    try {
      o.ca = readFileSync(t.caFile);
    } catch (e) {
      throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: t.caFile, reason: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
  }
  if (t.serverName) o.servername = t.serverName;
  else if (!isIP(host)) o.servername = host;
  if (t.insecureSkipVerify) {
    o.rejectUnauthorized = false;
    o.checkServerIdentity = () => undefined;
  }
  return o;
}
