// Profiling baseline, not part of the mock: the same minimal ext_proc server as
// minimal-grpc-js-server.ts, on the mock's own node:http2 transport (grpc-h2-server.ts).
//   taskset -c 0 node mock-epp/load/baselines/minimal-h2-server.ts
import { EXT_PROC_METHOD_PATH, messageTypes, type ProcessingRequest, type ProcessingResponse } from '../../../core/proto.ts';
import { GrpcH2Server } from '../../grpc-h2-server.ts';

type Codec = { serialize: (m: unknown) => Buffer; deserialize: (b: Buffer) => unknown };
const types = messageTypes as unknown as Record<string, Codec>;
const req = types['envoy.service.ext_proc.v3.ProcessingRequest'] as Codec;
const res = types['envoy.service.ext_proc.v3.ProcessingResponse'] as Codec;
const HEADERS: ProcessingResponse = { request_headers: { response: {} } };
const BODY: ProcessingResponse = { request_body: { response: {} } };
const server = new GrpcH2Server({ maxMessageBytes: 16 * 1024 * 1024 });
server.addMethod(EXT_PROC_METHOD_PATH, {
  codec: { serialize: req.serialize, deserialize: req.deserialize, serializeRes: res.serialize },
  handle: (call) => {
    call.on('message', (m: ProcessingRequest) => call.write(m.request_headers ? HEADERS : BODY));
    call.on('halfClose', () => call.end(0));
  },
});
const port = await server.listen('127.0.0.1', 0);
process.stdout.write(`grpc listening on 127.0.0.1:${port}\n`);
process.on('SIGTERM', () => process.exit(0));
