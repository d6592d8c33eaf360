// minimal grpc-js ext_proc server: 2 answers per stream, no logic (baseline for the profile)
import * as grpc from '@grpc/grpc-js';
import { extProcServiceDefinition } from '../core/proto.ts';
const s = new grpc.Server();
const H = { request_headers: { response: {} } };
const B = { request_body: { response: {} } };
s.addService(extProcServiceDefinition, { Process: (call: any) => { call.on('data', (m: any) => { call.write(m.request_headers ? H : B); }); call.on('end', () => call.end()); } });
s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => { console.log(`grpc listening on 127.0.0.1:${p}`); });
process.on('SIGTERM', () => s.forceShutdown());
