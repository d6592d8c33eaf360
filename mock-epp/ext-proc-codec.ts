// Fast encoding of the mock's answers: protobufjs `Type.encode` on the plain objects the
// session builds, skipping the `fromObject` pass the proto-loader serializer makes on every
// message (profiling: about half the serialize cost). Decoding stays with the proto loader
// (core/proto.ts), whose options shape what the session reads. Same .proto files, same bytes
// (mock-epp/ext-proc-codec.test.ts compares them).
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../core/proto.ts';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
root.loadSync(['envoy/service/ext_proc/v3/external_processor.proto', 'grpc/health/v1/health.proto'], { keepCase: true });
root.resolveAll();

const ProcessingResponse = root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse');
const HealthCheckResponse = root.lookupType('grpc.health.v1.HealthCheckResponse');

/** Encodes a ProcessingResponse built as a plain object (Buffers for bytes, numbers for enums, camelCase Struct values). */
export function encodeProcessingResponse(m: unknown): Buffer {
  const u8 = ProcessingResponse.encode(m as protobuf.Message).finish();
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function encodeHealthCheckResponse(m: unknown): Buffer {
  const u8 = HealthCheckResponse.encode(m as protobuf.Message).finish();
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}
