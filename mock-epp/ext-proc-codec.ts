// Fast codec for the mock's (and node-proxy's EPP client's) hot path, on the same .proto files as core/proto.ts:
// - answers: protobufjs `Type.encode` on the plain objects the session builds, skipping the
//   `fromObject` pass the proto-loader serializer makes on every message (same bytes:
//   mock-epp/ext-proc-codec.test.ts compares them);
// - requests: `Type.decode` only, no `toObject` copy. The result reads like the proto loader's
//   `defaults: false` objects where the session looks (oneof name in `request`, absent
//   messages null, Struct values by their `kind`), with scalar defaults ('' / false / empty
//   bytes) for unset scalars, which the session treats as absent.
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR, type ProcessingRequest as ProcessingRequestMessage } from '../core/proto.ts';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
root.loadSync(['envoy/service/ext_proc/v3/external_processor.proto', 'grpc/health/v1/health.proto'], { keepCase: true });
root.resolveAll();

const ProcessingRequest = root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
const ProcessingResponse = root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse');
const HealthCheckResponse = root.lookupType('grpc.health.v1.HealthCheckResponse');

/** Decodes a ProcessingRequest (throws on bytes that are not one). */
export function decodeProcessingRequest(b: Buffer): ProcessingRequestMessage {
  return ProcessingRequest.decode(b) as unknown as ProcessingRequestMessage;
}

// Answers the session shares between streams (session-answers.ts: the plain pick answer per
// value, the empty body answers) are frozen and never change: encoded once.
const frozenEncoded = new WeakMap<object, Buffer>();

/**
 * Encodes a ProcessingResponse built as a plain object (Buffers for bytes, numbers for enums,
 * camelCase Struct values), or passes a Buffer through. A frozen object is encoded once and
 * its bytes reused: freeze only answers that never change, nested parts included. The bytes
 * are shared: the transport copies them into its frame.
 */
export function encodeProcessingResponse(m: unknown): Buffer {
  // Already-encoded bytes go out as they are: the fuzz mode (fuzz-session.ts) sends undecodable answers.
  if (Buffer.isBuffer(m)) return m;
  const frozen = Object.isFrozen(m);
  if (frozen) {
    const b = frozenEncoded.get(m as object);
    if (b) return b;
  }
  const u8 = ProcessingResponse.encode(m as protobuf.Message).finish();
  const b = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
  if (frozen) frozenEncoded.set(m as object, b);
  return b;
}

/**
 * Encodes a ProcessingRequest built as a plain object (node-proxy's EPP client): `Type.encode`
 * without the proto loader's `fromObject` copy of every message (same bytes: ext-proc-codec.test.ts).
 */
export function encodeProcessingRequest(m: unknown): Buffer {
  const u8 = ProcessingRequest.encode(m as protobuf.Message).finish();
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function encodeHealthCheckResponse(m: unknown): Buffer {
  const u8 = HealthCheckResponse.encode(m as protobuf.Message).finish();
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}
