// A small promise-based ext_proc client over grpc-js: tests (and anyone poking a mock EPP)
// send ProcessingRequests and await the answers one by one.
import * as grpc from '@grpc/grpc-js';
import { rawHeader } from '../core/headers.ts';
import { fromProtoStruct } from '../core/proto-struct.ts';
import { ExternalProcessorClient, type HeaderValue, type ProcessingRequest, type ProcessingResponse } from '../core/proto.ts';

export interface StreamOutcome {
  code: number;
  details: string;
}

export class ExtProcTestStream {
  readonly #call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
  readonly #buffered: ProcessingResponse[] = [];
  readonly #waiters: Array<{ resolve: (r: ProcessingResponse | undefined) => void }> = [];
  #ended = false;
  readonly outcome: Promise<StreamOutcome>;

  constructor(call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>) {
    this.#call = call;
    call.on('data', (r: ProcessingResponse) => {
      const w = this.#waiters.shift();
      if (w) w.resolve(r);
      else this.#buffered.push(r);
    });
    this.outcome = new Promise((resolve) => {
      let done = false;
      const finish = (o: StreamOutcome) => {
        if (done) return;
        done = true;
        this.#ended = true;
        for (const w of this.#waiters.splice(0)) w.resolve(undefined);
        resolve(o);
      };
      call.on('status', (s: grpc.StatusObject) => finish({ code: s.code, details: s.details }));
      call.on('error', (e: grpc.ServiceError) => finish({ code: e.code ?? 2, details: e.details ?? e.message }));
    });
  }

  send(m: ProcessingRequest): this {
    this.#call.write(m);
    return this;
  }

  /** The next answer, or undefined once the stream has ended without one. */
  next(): Promise<ProcessingResponse | undefined> {
    const r = this.#buffered.shift();
    if (r) return Promise.resolve(r);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push({ resolve }));
  }

  /** Half-closes (the client is done sending). */
  end(): this {
    this.#call.end();
    return this;
  }

  cancel(): void {
    this.#call.cancel();
  }
}

export class ExtProcTestClient {
  readonly client: grpc.Client & { Process: (opts?: grpc.CallOptions) => grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> };

  constructor(address: string, creds: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
    this.client = new ExternalProcessorClient(address, creds, { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1, ...options }) as never;
  }

  open(opts: grpc.CallOptions = {}): ExtProcTestStream {
    return new ExtProcTestStream(this.client.Process(opts));
  }

  close(): void {
    this.client.close();
  }
}

/** Request headers the way Envoy sends them: lower-case keys, pseudo-headers, raw_value only. */
export function envoyHeaders(headers: Record<string, string>, defaults = true): HeaderValue[] {
  const all = defaults ? { ':method': 'POST', ':path': '/v1/completions', ':authority': 'example.test', ':scheme': 'http', ...headers } : headers;
  return Object.entries(all).map(([k, v]) => rawHeader(k, v));
}

/** The x-gateway-destination-endpoint value set by an answer (raw_value or value), if any. */
export function setHeaderValue(r: ProcessingResponse | undefined, key: string): string | undefined {
  const common = r?.request_headers?.response ?? r?.request_body?.response;
  for (const o of common?.header_mutation?.set_headers ?? []) {
    if (o.header?.key === key) return o.header.raw_value ? o.header.raw_value.toString('latin1') : o.header.value;
  }
  return undefined;
}

/** The envoy.lb dynamic metadata value under `key`, if any. */
export function lbMetadataValue(r: ProcessingResponse | undefined, key = 'x-gateway-destination-endpoint'): string | undefined {
  const v = fromProtoStruct(r?.dynamic_metadata)['envoy.lb'];
  const x = v && typeof v === 'object' && !Array.isArray(v) ? v[key] : undefined;
  return typeof x === 'string' ? x : undefined;
}
