// Envoy's official ext_proc API protos (as shipped in @grpc/grpc-js-xds, deps/envoy-api),
// loaded with protobufjs, plus the fields that copy predates (from the facts file §1). Used
// by tests that must not trust eppkit's own hand-written protos: the wire-compat test, and the
// fidelity-profile tests that talk to the mock over real sockets with these encoders.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../core/proto.ts';
import { ExtProcTestStream } from '../../mock-epp/ext-proc-client.ts';

const require = createRequire(import.meta.url);
// protobufjs is the encoder under @grpc/proto-loader; a CommonJS module.
const protobuf = require('protobufjs') as typeof import('protobufjs');
const XDS_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(XDS_DEPS, d));

export function loadOfficial(): import('protobufjs').Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of INCLUDE) {
      const p = join(dir, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync('envoy/service/ext_proc/v3/external_processor.proto', { keepCase: true });
  root.resolveAll();
  const T = (n: string) => root.lookupType(n);
  const ns = root.lookup('envoy.service.ext_proc.v3') as import('protobufjs').Namespace;
  // ---- additions from the facts file, where the official copy is too old ----
  const has = (t: import('protobufjs').Type, id: number) => t.fieldsArray.some((f) => f.id === id);
  const bodyMode = root.lookupEnum('envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode');
  if (bodyMode.values.FULL_DUPLEX_STREAMED === undefined) bodyMode.add('FULL_DUPLEX_STREAMED', 4);
  if (!ns.get('ProtocolConfiguration')) {
    ns.add(
      new protobuf.Type('ProtocolConfiguration')
        .add(new protobuf.Field('request_body_mode', 1, 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode'))
        .add(new protobuf.Field('response_body_mode', 2, 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode'))
        .add(new protobuf.Field('send_body_without_waiting_for_header_response', 3, 'bool')),
    );
  }
  const req = T('envoy.service.ext_proc.v3.ProcessingRequest');
  if (!has(req, 11)) req.add(new protobuf.Field('protocol_config', 11, 'ProtocolConfiguration'));
  const body = T('envoy.service.ext_proc.v3.HttpBody');
  if (!has(body, 3)) body.add(new protobuf.Field('end_of_stream_without_message', 3, 'bool'));
  if (!ns.get('StreamedBodyResponse')) {
    ns.add(new protobuf.Type('StreamedBodyResponse').add(new protobuf.Field('body', 1, 'bytes')).add(new protobuf.Field('end_of_stream', 2, 'bool')));
  }
  const bm = T('envoy.service.ext_proc.v3.BodyMutation');
  if (!has(bm, 3)) {
    const f = new protobuf.Field('streamed_response', 3, 'StreamedBodyResponse');
    bm.add(f);
    bm.oneofs.mutation?.add(f);
  }
  if (!ns.get('StreamedImmediateResponse')) {
    const sir = new protobuf.Type('StreamedImmediateResponse');
    const fields = [
      new protobuf.Field('headers_response', 1, 'HttpHeaders'),
      new protobuf.Field('body_response', 2, 'StreamedBodyResponse'),
      new protobuf.Field('trailers_response', 3, 'HttpTrailers'),
    ];
    for (const f of fields) sir.add(f);
    const oneof = new protobuf.OneOf('response');
    sir.add(oneof);
    for (const f of fields) oneof.add(f);
    ns.add(sir);
  }
  const resp = T('envoy.service.ext_proc.v3.ProcessingResponse');
  if (!has(resp, 11)) {
    const f = new protobuf.Field('streamed_immediate_response', 11, 'StreamedImmediateResponse');
    resp.add(f);
    resp.oneofs.response?.add(f);
  }
  root.resolveAll();
  return root;
}


/** Decode options: bytes as Buffer, enums as numbers, no defaults (absent stays absent). */
export const OFFICIAL_DECODE = { longs: String, enums: Number, bytes: Buffer as unknown as typeof String, defaults: false };

/**
 * An ext_proc client whose messages are encoded and decoded by the official protos only, so
 * what a test sees is what Envoy's own decoder would see on the wire.
 */
export class OfficialExtProcClient {
  readonly #client: grpc.Client;
  readonly #req: import('protobufjs').Type;
  readonly #resp: import('protobufjs').Type;

  constructor(address: string, root: import('protobufjs').Root = loadOfficial()) {
    this.#req = root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
    this.#resp = root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse');
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  open(): ExtProcTestStream {
    const call = this.#client.makeBidiStreamRequest<ProcessingRequest, ProcessingResponse>(
      '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
      (m) => {
        const msg = this.#req.fromObject(m as object);
        const err = this.#req.verify(msg);
        if (err) throw new Error(`official ProcessingRequest rejects the message: ${err}`);
        return Buffer.from(this.#req.encode(msg).finish());
      },
      (b) => this.#resp.toObject(this.#resp.decode(b), OFFICIAL_DECODE) as ProcessingResponse,
    );
    return new ExtProcTestStream(call);
  }

  close(): void {
    this.#client.close();
  }
}
