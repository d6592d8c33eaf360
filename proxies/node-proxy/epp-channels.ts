// One gRPC client (one HTTP/2 channel) per EPP target, shared by every request: each request is
// a stream on it, never a connection of its own. grpc-js reconnects a failed channel with
// exponential backoff by itself; the options below bound that backoff so an EPP that comes
// back is used again quickly.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ExternalProcessorClient, type ProcessingRequest, type ProcessingResponse } from '../../core/proto.ts';
import { EppkitError } from '../../core/errors.ts';
import type { EppTls } from '../../core/route-model.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, H2Call, H2Target } from './epp-h2-client.ts';
import { WireCall, WireTarget } from './epp-wire-client.ts';

/** What EppExchange uses of a stream: grpc-js's ClientDuplexStream, or H2Call. */
export interface ExtProcCall {
  on(event: 'data', listener: (m: ProcessingResponse) => void): unknown;
  on(event: 'error', listener: (e: { code: number; details?: string; message: string }) => void): unknown;
  on(event: 'status' | 'end', listener: () => void): unknown;
  write(m: ProcessingRequest): unknown;
  end(): void;
  cancel(): void;
}

export interface ExtProcClient {
  Process(): ExtProcCall;
}

interface GrpcExtProcClient extends grpc.Client {
  Process(options?: grpc.CallOptions): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
}

/**
 * `wire` (default): eppkit's own HTTP/2 client (epp-wire-client.ts). `http2`: the client on
 * node:http2 (epp-h2-client.ts). `grpc-js`: one grpc-js client per target.
 */
export type EppClientKind = 'grpc-js' | 'http2' | 'wire';

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

/** One target of a lean client (`wire` or `http2`): its client, made once, and its connection's life. */
interface LeanTarget {
  client: ExtProcClient;
  warm(): void;
  close(): void;
}

function leanTarget(kind: 'wire' | 'http2', address: string, tls: EppTls | undefined, maxMessageBytes: number): LeanTarget {
  const t = kind === 'wire' ? new WireTarget(address, tls, maxMessageBytes) : new H2Target(address, tls, maxMessageBytes);
  return {
    client: { Process: t instanceof WireTarget ? () => new WireCall(t) : () => new H2Call(t) },
    warm: () => t.warm(),
    close: () => t.close(),
  };
}

function keyOf(address: string, tls: EppTls | undefined): string {
  return tls ? `${address}|${tls.caFile ?? ''}|${tls.serverName ?? ''}|${tls.insecureSkipVerify ? 1 : 0}` : address;
}

export class EppChannels {
  private readonly clients = new Map<string, GrpcExtProcClient>();
  private readonly lean = new Map<string, LeanTarget>();
  private readonly kind: EppClientKind;
  private readonly maxMessageBytes: number;

  /** maxMessageBytes: the largest EPP answer the http2 client accepts (RESOURCE_EXHAUSTED beyond). */
  constructor(kind: EppClientKind = 'wire', maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {
    this.kind = kind;
    this.maxMessageBytes = maxMessageBytes;
  }

  /** The shared client for this target, created on first use. */
  client(address: string, tls?: EppTls): ExtProcClient {
    const key = keyOf(address, tls);
    if (this.kind === 'grpc-js') return this.grpcClient(key, address, tls);
    let t = this.lean.get(key);
    if (!t) {
      t = leanTarget(this.kind, address, tls, this.maxMessageBytes);
      this.lean.set(key, t);
    }
    return t.client;
  }

  private grpcClient(key: string, address: string, tls?: EppTls): GrpcExtProcClient {
    let c = this.clients.get(key);
    if (!c) {
      const { creds, options } = credentials(tls);
      // A private subchannel pool keeps this proxy's connection its own (tests run several
      // proxies in one process and count connections per proxy).
      c = new ExternalProcessorClient(address, creds, {
        ...CHANNEL_OPTIONS,
        ...options,
        'grpc.use_local_subchannel_pool': 1,
      }) as unknown as GrpcExtProcClient;
      this.clients.set(key, c);
    }
    return c;
  }

  /** Opens the channel now so the first request does not pay for the connect. */
  warm(address: string, tls?: EppTls): void {
    const key = keyOf(address, tls);
    this.client(address, tls);
    if (this.kind === 'grpc-js') this.clients.get(key)?.getChannel().getConnectivityState(true);
    else this.lean.get(key)?.warm();
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    for (const t of this.lean.values()) t.close();
    this.lean.clear();
  }
}
