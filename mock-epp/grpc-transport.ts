// What the mock's handlers (ext-proc-session.ts, the health service in mock-epp.ts) need of a
// gRPC server, so the same logic runs on either transport: grpc-h2-server.ts (node:http2, the
// default) or grpc-js-transport.ts (@grpc/grpc-js). See docs/mock-epp.md#transports.
import type { EventEmitter } from 'node:events';

/** The transports a mock EPP can serve gRPC with. */
export const TRANSPORTS = ['h2', 'grpc-js'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/**
 * One gRPC call as a handler sees it. Events: 'message' (a decoded request, or an
 * `{ undecodable, size }` marker for bytes that do not decode), 'halfClose' (the client is
 * done sending), 'cancelled' (the stream went away before the call was ended; the argument
 * is the HTTP/2 RST_STREAM code, or a text when the transport does not know it), 'refused'
 * (the transport refused a frame and ended the call itself).
 */
export interface GrpcServerCall<Res> {
  readonly peer: string;
  readonly ended: boolean;
  /**
   * Hands the call's events to one object instead of listeners: from then on they go to its
   * methods, not to 'message'/'halfClose'/'cancelled'/'refused' listeners. One handler object
   * per stream (the session) costs less than four closures and listeners per stream
   * (docs/BENCHMARKS.md "Mock EPP cost, 2026-11-30", fifth pass).
   */
  setHandler(h: CallHandler): void;
  // Typed loosely, like EventEmitter (the events are listed above).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: 'message' | 'halfClose' | 'cancelled' | 'refused', fn: (...args: any[]) => void): this;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  once(event: 'message' | 'halfClose' | 'cancelled' | 'refused', fn: (...args: any[]) => void): this;
  write(m: Res): void;
  /** Ends the call with a gRPC status (default OK). */
  end(code?: number, details?: string): void;
  /** Aborts the call as hard as the transport allows; returns what was done (for the journal). */
  reset(code?: number): string;
}

/** The events of a call, as methods of one object (see GrpcServerCall.setHandler). */
export interface CallHandler {
  /** A decoded request, or an `{ undecodable, size }` marker. */
  onMessage(m: unknown): void;
  onHalfClose(): void;
  onCancelled(reason: number | string): void;
  onRefused(reason: string): void;
}

/** setHandler for a call that is an event emitter: its events forwarded to the handler's methods. */
export function forwardEvents(call: Pick<EventEmitter, 'on'>, h: CallHandler): void {
  call.on('message', (m: unknown) => h.onMessage(m));
  call.on('halfClose', () => h.onHalfClose());
  call.on('cancelled', (reason: number | string) => h.onCancelled(reason));
  call.on('refused', (reason: string) => h.onRefused(reason));
}

export interface Codec<T> {
  serialize: (m: T) => Buffer;
  deserialize: (b: Buffer) => T;
}

export interface MethodHandler {
  /** Decoder of the request and encoder of the response (the h2 transport's fast codec; grpc-js uses the proto-loader definitions). */
  codec: Codec<unknown> & { serializeRes: (m: unknown) => Buffer };
  handle: (call: GrpcServerCall<unknown>) => void;
}

export interface GrpcTransportServer {
  addMethod(path: string, h: MethodHandler): this;
  /** Resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting, waits up to graceMs for open calls, then `onGraceExpired`, then forces the rest closed. */
  close(graceMs: number, onGraceExpired?: () => void): Promise<void>;
}
