// Loads the hand-written ext_proc and health protos once, for every TypeScript part of eppkit.
// Options matter on the wire: `defaults: false` keeps unset fields absent, so a decoded
// HeaderValue never carries both `value` and `raw_value` (Envoy answers 500 to that).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROTO_DIR = dirname(fileURLToPath(import.meta.url)).replace(/core$/, 'proto');

export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
export const EXT_PROC_METHOD_PATH = `/${EXT_PROC_SERVICE}/Process`;

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const packageDefinition = protoLoader.loadSync(
  [
    join(PROTO_DIR, 'envoy/service/ext_proc/v3/external_processor.proto'),
    join(PROTO_DIR, 'grpc/health/v1/health.proto'),
  ],
  LOADER_OPTIONS,
);

export const grpcObject = grpc.loadPackageDefinition(packageDefinition) as unknown as {
  envoy: { service: { ext_proc: { v3: { ExternalProcessor: grpc.ServiceClientConstructor } } } };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

export const ExternalProcessorClient = grpcObject.envoy.service.ext_proc.v3.ExternalProcessor;
export const HealthClient = grpcObject.grpc.health.v1.Health;
export const extProcServiceDefinition = ExternalProcessorClient.service;
export const healthServiceDefinition = HealthClient.service;

/** The raw protobufjs message types, for encoding/decoding outside gRPC (wire tests, fuzzing). */
export const messageTypes = packageDefinition;

// ---- TypeScript shapes of the messages as the loader options above decode them ----

export interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer;
}
export interface HeaderMap {
  headers?: HeaderValue[];
}
export interface HeaderValueOption {
  header?: HeaderValue;
  append?: { value?: boolean };
  append_action?: number;
  keep_empty_value?: boolean;
}
export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}
/**
 * google.protobuf.Struct as it crosses protobufjs. protobufjs always uses its bundled
 * struct.proto, whose field names are camelCase whatever `keepCase` says: snake_case keys are
 * silently dropped on encode. Build and read Structs through core/proto-struct.ts.
 */
export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}
export interface ProtoValue {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
  /** The member that is set, on decoded messages (oneofs: true). */
  kind?: string;
}
export interface Metadata {
  filter_metadata?: Record<string, ProtoStruct>;
}
export interface HttpHeaders {
  headers?: HeaderMap;
  end_of_stream?: boolean;
}
export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
  end_of_stream_without_message?: boolean;
}
export interface HttpTrailers {
  trailers?: HeaderMap;
}
export interface ProcessingMode {
  request_header_mode?: number;
  response_header_mode?: number;
  request_body_mode?: number;
  response_body_mode?: number;
  request_trailer_mode?: number;
  response_trailer_mode?: number;
}
export interface ProtocolConfiguration {
  request_body_mode?: number;
  response_body_mode?: number;
  send_body_without_waiting_for_header_response?: boolean;
}
export type RequestPhase =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';

export interface ProcessingRequest {
  request?: RequestPhase;
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  metadata_context?: Metadata;
  attributes?: Record<string, ProtoStruct>;
  observability_mode?: boolean;
  protocol_config?: ProtocolConfiguration;
}
export interface StreamedBodyResponse {
  body?: Buffer;
  end_of_stream?: boolean;
}
export interface BodyMutation {
  mutation?: 'body' | 'clear_body' | 'streamed_response';
  body?: Buffer;
  clear_body?: boolean;
  streamed_response?: StreamedBodyResponse;
}
export interface CommonResponse {
  status?: number;
  header_mutation?: HeaderMutation;
  body_mutation?: BodyMutation;
  trailers?: HeaderMap;
  clear_route_cache?: boolean;
}
export interface ImmediateResponse {
  status?: { code?: number };
  headers?: HeaderMutation;
  body?: Buffer;
  grpc_status?: { status?: number };
  details?: string;
}
export interface StreamedImmediateResponse {
  response?: 'headers_response' | 'body_response' | 'trailers_response';
  headers_response?: HttpHeaders;
  body_response?: StreamedBodyResponse;
  trailers_response?: HttpTrailers;
}
export type ResponsePhase =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers'
  | 'immediate_response'
  | 'streamed_immediate_response';

export interface ProcessingResponse {
  response?: ResponsePhase;
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: ImmediateResponse;
  streamed_immediate_response?: StreamedImmediateResponse;
  dynamic_metadata?: ProtoStruct;
  mode_override?: ProcessingMode;
  override_message_timeout?: { seconds?: string | number; nanos?: number };
}

export const BodySendMode = {
  NONE: 0,
  STREAMED: 1,
  BUFFERED: 2,
  BUFFERED_PARTIAL: 3,
  FULL_DUPLEX_STREAMED: 4,
} as const;

export const HeaderSendMode = { DEFAULT: 0, SEND: 1, SKIP: 2 } as const;

/** The EPP protocol's names (facts file §3). */
export const DESTINATION_ENDPOINT_HEADER = 'x-gateway-destination-endpoint';
export const DESTINATION_ENDPOINT_NAMESPACE = 'envoy.lb';
export const SUBSET_HINT_NAMESPACE = 'envoy.lb.subset_hint';
export const SUBSET_HINT_KEY = 'x-gateway-destination-endpoint-subset';
export const SERVED_ENDPOINT_KEY = 'x-gateway-destination-endpoint-served';
export const CONFORMANCE_SELECTION_HEADER = 'test-epp-endpoint-selection';
