// The mock EPP's second gRPC transport: @grpc/grpc-js `Server` with the proto-loader service
// definitions of core/proto.ts, feeding the same handlers as grpc-h2-server.ts through the
// GrpcServerCall interface. Not the default (docs/mock-epp.md#transports): it costs more CPU
// per stream, and grpc-js has no way to lift Node's HTTP/2 rapid-reset guard, so a connection
// from Envoy (which ends every finished ext_proc stream with RST_STREAM) is closed after about
// a thousand streams. It exists to check the mock against the stock gRPC stack.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { extProcServiceDefinition, healthServiceDefinition } from '../core/proto.ts';
import { forwardEvents, type CallHandler, type GrpcServerCall, type GrpcTransportServer, type MethodHandler } from './grpc-transport.ts';

type AnyCall =
  | grpc.ServerDuplexStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerUnaryCall<unknown, unknown>;

/** The GrpcServerCall face of one grpc-js call (bidi, server-streaming or unary). */
class GrpcJsCall extends EventEmitter implements GrpcServerCall<unknown> {
  readonly peer: string;
  readonly #call: AnyCall;
  readonly #unaryCallback: grpc.sendUnaryData<unknown> | undefined;
  #unaryAnswer: unknown;
  #ended = false;

  setHandler(h: CallHandler): void {
    forwardEvents(this, h);
  }

  constructor(call: AnyCall, unaryCallback?: grpc.sendUnaryData<unknown>) {
    super();
    this.#call = call;
    this.#unaryCallback = unaryCallback;
    this.peer = call.getPeer();
    const events = call as unknown as EventEmitter;
    events.on('cancelled', () => {
      if (this.#ended) return;
      this.#ended = true;
      // grpc-js reports alike a client's RST_STREAM, a lost connection, its own deadline and a message it
      // refused itself (over the size limit, undecompressable); the RST_STREAM code is not exposed.
      this.emit('cancelled', 'cancelled (grpc-js: client reset, lost connection, deadline, or a message grpc-js refused)');
    });
    events.on('error', () => {
      // A write after the client went away; 'cancelled' decides the outcome.
    });
    if ('request' in call && call.request !== undefined) {
      // Unary and server-streaming: the one request is already decoded; deliver it once the handler listens.
      const req = call.request;
      process.nextTick(() => {
        if (this.#ended) return;
        this.emit('message', req);
        if (!this.#ended) this.emit('halfClose');
      });
    } else {
      events.on('data', (m: unknown) => {
        if (!this.#ended) this.emit('message', m);
      });
      events.on('end', () => {
        if (!this.#ended) this.emit('halfClose');
      });
    }
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(m: unknown): void {
    if (this.#ended) return;
    if (this.#unaryCallback) {
      this.#unaryAnswer = m;
      return;
    }
    (this.#call as grpc.ServerWritableStream<unknown, unknown>).write(m);
  }

  end(code = 0, details = ''): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#unaryCallback) {
      if (code === 0) this.#unaryCallback(null, this.#unaryAnswer);
      else this.#unaryCallback({ code, details });
      return;
    }
    const call = this.#call as grpc.ServerWritableStream<unknown, unknown>;
    if (call.cancelled) return;
    // grpc-js sends the status set by an 'error' event once the queued writes are flushed.
    if (code === 0) call.end();
    else call.emit('error', { code, details } satisfies Partial<grpc.StatusObject>);
  }

  /** grpc-js cannot send RST_STREAM from a handler: the nearest outcome is an INTERNAL status. */
  reset(): string {
    const what = 'INTERNAL status (grpc-js transport cannot send RST_STREAM)';
    if (this.#ended) return what;
    this.end(grpc.status.INTERNAL, 'mock EPP reset: RST_STREAM is not possible on the grpc-js transport');
    return what;
  }
}

export interface GrpcJsServerOptions {
  tls?: { cert: Buffer; key: Buffer };
  maxMessageBytes: number;
}

interface MethodDef {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize: (b: Buffer) => unknown;
}

/** Serves the mock's methods (by path) from the ExternalProcessor and Health service definitions. */
export class GrpcJsServer implements GrpcTransportServer {
  readonly #opts: GrpcJsServerOptions;
  readonly #server: grpc.Server;
  readonly #handlers = new Map<string, MethodHandler>();

  constructor(opts: GrpcJsServerOptions) {
    this.#opts = opts;
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': opts.maxMessageBytes,
      'grpc.max_send_message_length': -1,
    });
  }

  addMethod(path: string, h: MethodHandler): this {
    this.#handlers.set(path, h);
    return this;
  }

  /** A service definition whose registered methods call their handler (the rest answer UNIMPLEMENTED). */
  #addService(definition: grpc.ServiceDefinition): void {
    const def: Record<string, unknown> = {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, m] of Object.entries(definition) as Array<[string, MethodDef]>) {
      const h = this.#handlers.get(m.path);
      // Undecodable bytes reach the handler as a marker (it answers INVALID_ARGUMENT), as on the h2 transport,
      // instead of grpc-js's own INTERNAL status.
      const deserialize = m.requestDeserialize;
      def[name] = {
        ...m,
        requestDeserialize: (b: Buffer) => {
          try {
            return deserialize(b);
          } catch (e) {
            return { undecodable: (e as Error).message, size: b.length };
          }
        },
      };
      if (!h) continue;
      const run = (call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => h.handle(new GrpcJsCall(call, cb));
      impl[name] = m.requestStream || m.responseStream ? (call: AnyCall) => run(call) : (call: AnyCall, cb: grpc.sendUnaryData<unknown>) => run(call, cb);
    }
    this.#server.addService(def as grpc.ServiceDefinition, impl);
  }

  listen(host: string, port: number): Promise<number> {
    this.#addService(extProcServiceDefinition);
    this.#addService(healthServiceDefinition);
    const creds = this.#opts.tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: this.#opts.tls.cert, private_key: this.#opts.tls.key }], false)
      : grpc.ServerCredentials.createInsecure();
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(target, creds, (err, bound) => {
        if (err) {
          // grpc-js wraps the socket error in a sentence; keep the code for the caller's mapping.
          const e = err as NodeJS.ErrnoException;
          if (/EADDRINUSE/.test(err.message)) e.code = 'EADDRINUSE';
          reject(e);
        } else resolve(bound);
      });
    });
  }

  async close(graceMs: number, onGraceExpired: () => void = () => {}): Promise<void> {
    const drained = new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), graceMs);
    });
    const first = await Promise.race([drained, expired]);
    clearTimeout(timer);
    if (first === 'expired') {
      onGraceExpired();
      await Promise.race([drained, new Promise((r) => setTimeout(r, 200))]);
      this.#server.forceShutdown();
    }
  }
}
