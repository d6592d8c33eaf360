// One gRPC client (one HTTP/2 channel) per EPP target, shared by every request: each request is
// a stream on it, never a connection of its own. grpc-js reconnects a failed channel with
// exponential backoff by itself; the options below bound that backoff so an EPP that comes
// back is used again quickly.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ExternalProcessorClient, type ProcessingRequest, type ProcessingResponse } from '../../core/proto.ts';
import { EppkitError } from '../../core/errors.ts';
import type { EppTls } from '../../core/route-model.ts';

export type ExtProcCall = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;

interface ExtProcClient extends grpc.Client {
  Process(options?: grpc.CallOptions): ExtProcCall;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  // Our own per-message timeouts govern; no retries of a stream that carries a request.
  'grpc.enable_retries': 0,
  // channelz bookkeeping costs CPU on every call; nothing here reads it.
  'grpc.enable_channelz': 0,
  // Requests with large buffered bodies travel in one message.
  'grpc.max_send_message_length': -1,
  'grpc.max_receive_message_length': -1,
};

function credentials(tls: EppTls | undefined): { creds: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tls) return { creds: grpc.credentials.createInsecure(), options: {} };
  let ca: Buffer | null = null;
  if (tls.caFile) {
    try {
      ca = readFileSync(tls.caFile);
    } catch (e) {
      throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: tls.caFile, reason: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
  }
  const insecure = tls.insecureSkipVerify === true;
  const creds = grpc.credentials.createSsl(ca, null, null, {
    rejectUnauthorized: !insecure,
    ...(insecure ? { checkServerIdentity: () => undefined } : {}),
  });
  const options: grpc.ChannelOptions = {};
  if (tls.serverName) {
    options['grpc.ssl_target_name_override'] = tls.serverName;
    options['grpc.default_authority'] = tls.serverName;
  }
  return { creds, options };
}

export class EppChannels {
  private readonly clients = new Map<string, ExtProcClient>();

  /** The shared client for this target, created on first use. */
  client(address: string, tls?: EppTls): ExtProcClient {
    const key = tls ? `${address}|${tls.caFile ?? ''}|${tls.serverName ?? ''}|${tls.insecureSkipVerify ? 1 : 0}` : address;
    let c = this.clients.get(key);
    if (!c) {
      const { creds, options } = credentials(tls);
      // A private subchannel pool keeps this proxy's connection its own (tests run several
      // proxies in one process and count connections per proxy).
      c = new ExternalProcessorClient(address, creds, {
        ...CHANNEL_OPTIONS,
        ...options,
        'grpc.use_local_subchannel_pool': 1,
      }) as unknown as ExtProcClient;
      this.clients.set(key, c);
    }
    return c;
  }

  /** Opens the channel now so the first request does not pay for the connect. */
  warm(address: string, tls?: EppTls): void {
    const ch = this.client(address, tls).getChannel();
    ch.getConnectivityState(true);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
