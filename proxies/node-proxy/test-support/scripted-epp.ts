// A real ext_proc gRPC server whose answers a test scripts message by message, for the few
// protocol corners the mock EPP does not produce on purpose (header and metadata endpoints
// that disagree, a metadata-only pick, plain per-chunk body answers in streamed mode).
import * as grpc from '@grpc/grpc-js';
import { extProcServiceDefinition, type ProcessingRequest, type ProcessingResponse } from '../../../core/proto.ts';

export type ScriptedCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export interface StartedScriptedEpp extends AsyncDisposable {
  readonly address: string;
  /** Every message received, per stream. */
  readonly streams: ProcessingRequest[][];
  /** How each stream ended, per stream: 'half-close' (client end), 'cancelled' (RST_STREAM), or open. */
  readonly ends: Array<'open' | 'half-close' | 'cancelled'>;
  stop(): Promise<void>;
}

/** `onMessage` is called for each request message with the stream's messages so far. */
export async function startScriptedEpp(
  onMessage: (call: ScriptedCall, msg: ProcessingRequest, seen: ProcessingRequest[]) => void,
): Promise<StartedScriptedEpp> {
  const streams: ProcessingRequest[][] = [];
  const ends: Array<'open' | 'half-close' | 'cancelled'> = [];
  const server = new grpc.Server();
  server.addService(extProcServiceDefinition, {
    Process: (call: ScriptedCall) => {
      const seen: ProcessingRequest[] = [];
      const i = streams.push(seen) - 1;
      ends[i] = 'open';
      // A client RST_STREAM also ends the readable side, just before 'cancelled': wait a tick.
      call.on('cancelled', () => {
        if (ends[i] === 'open') ends[i] = 'cancelled';
      });
      call.on('data', (m: ProcessingRequest) => {
        seen.push(m);
        onMessage(call, m, seen);
      });
      call.on('end', () => {
        setTimeout(() => {
          if (ends[i] !== 'open') return;
          ends[i] = 'half-close';
          call.end();
        }, 5);
      });
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      server.forceShutdown();
      resolve();
    });
  return { address: `127.0.0.1:${port}`, streams, ends, stop, [Symbol.asyncDispose]: stop };
}

/** The Struct form protobufjs encodes (camelCase value fields). */
export function lbMetadata(value: string): ProcessingResponse['dynamic_metadata'] {
  return {
    fields: { 'envoy.lb': { structValue: { fields: { 'x-gateway-destination-endpoint': { stringValue: value } } } } },
  } as unknown as ProcessingResponse['dynamic_metadata'];
}
