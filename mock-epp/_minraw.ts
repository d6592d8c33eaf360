import { GrpcH2Server } from './grpc-h2-server.ts';
import { messageTypes } from '../core/proto.ts';
const t = messageTypes as any;
const req = t['envoy.service.ext_proc.v3.ProcessingRequest'], res = t['envoy.service.ext_proc.v3.ProcessingResponse'];
const s = new GrpcH2Server({ maxMessageBytes: 1 << 24 });
const H = { request_headers: { response: {} } }, B = { request_body: { response: {} } };
s.addMethod('/envoy.service.ext_proc.v3.ExternalProcessor/Process', { codec: { serialize: req.serialize, deserialize: req.deserialize, serializeRes: res.serialize }, handle: (call: any) => { call.on('message', (m: any) => call.write(m.request_headers ? H : B)); call.on('halfClose', () => call.end(0)); } });
const p = await s.listen('127.0.0.1', 0); console.log(`grpc listening on 127.0.0.1:${p}`);
process.on('SIGTERM', () => process.exit(0));
