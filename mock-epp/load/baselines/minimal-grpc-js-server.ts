// Profiling baseline, not part of the mock: the least an ext_proc server can do on grpc-js
// (answer each message with an empty answer of its phase, end on half-close). The mock EPP's
// CPU per stream is compared against this and minimal-h2-server.ts in docs/BENCHMARKS.md.
//   taskset -c 0 node mock-epp/load/baselines/minimal-grpc-js-server.ts
import * as grpc from '@grpc/grpc-js';
import { extProcServiceDefinition, type ProcessingRequest, type ProcessingResponse } from '../../../core/proto.ts';

const server = new grpc.Server();
const HEADERS: ProcessingResponse = { request_headers: { response: {} } };
const BODY: ProcessingResponse = { request_body: { response: {} } };
server.addService(extProcServiceDefinition, {
  Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
    call.on('data', (m: ProcessingRequest) => call.write(m.request_headers ? HEADERS : BODY));
    call.on('end', () => call.end());
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`grpc listening on 127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
