// Where an EPP target is and how a connection to it is opened, for both lean clients
// (epp-wire-client.ts, epp-h2-client.ts): one parse of the address, one set of socket options.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { EppTls } from '../../core/route-model.ts';
import { eppTlsOptions } from './epp-tls-options.ts';
import { parseListen } from './node-proxy-config.ts';

export interface EppAddress {
  /** The host without brackets (an IPv6 address as is). */
  readonly host: string;
  readonly port: number;
  /** The TLS options, when the target is reached over TLS. */
  readonly tls: tls.ConnectionOptions | undefined;
  /** A new connection: `raw` is the TCP socket (the caller destroys it on close), `socket` what speaks HTTP/2. */
  connect(): { raw: net.Socket; socket: net.Socket | tls.TLSSocket };
}

/**
 * `address` is host:port ([v6]:port), as the config's schema checked it with the same parser; an
 * unreadable CA file throws EPPKIT_CONFIG_UNREADABLE.
 */
export function eppAddress(address: string, t: EppTls | undefined): EppAddress {
  // Not `new URL`: it drops a port that is its scheme's default (80), which then read as 0.
  const hp = parseListen(address);
  if (!hp) throw new Error(`EPP address not host:port: ${address}`);
  const { host, port } = hp;
  const options = t ? eppTlsOptions(t, host) : undefined;
  return {
    host,
    port,
    tls: options,
    connect() {
      const raw = net.connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 });
      return { raw, socket: options ? tls.connect({ ...options, socket: raw, host }) : raw };
    },
  };
}
