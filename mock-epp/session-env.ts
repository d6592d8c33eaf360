// What an ext_proc session (ext-proc-session.ts, bbr-session.ts, fuzz-session.ts) gets from the
// server: the config in effect when the stream opened, the journal, metrics, logger.
import type { Logger } from '../core/logger.ts';
import type { ProcessingResponse } from '../core/proto.ts';
import type { GrpcServerCall } from './grpc-transport.ts';
import type { Journal } from './journal.ts';
import type { MockEppConfig } from './mock-epp-config.ts';
import type { MockEppMetrics } from './mock-epp-metrics.ts';
import type { Picker } from './pickers.ts';
import type { CompiledRule } from './rules.ts';

/** Everything a stream needs from the server, captured at stream open (config swaps do not affect open streams). */
export interface ConfigState {
  config: MockEppConfig;
  rules: CompiledRule[];
  picker: Picker;
  /** Whether a rule or the picker reads the `model` of a JSON body / anything of the body. */
  needsModel: boolean;
  needsBody: boolean;
  /** Streams opened under this config (rule ordinals count from here). */
  ordinal: number;
}

export interface SessionEnv {
  state: ConfigState;
  journal: Journal;
  metrics: MockEppMetrics;
  logger: Logger;
  nextId: () => number;
  onClosed: (s: { abort(): void }) => void;
}

/** Marker the wrapped deserializer yields for bytes that are not a ProcessingRequest. */
export interface Undecodable {
  undecodable: string;
  size: number;
}

export type ExtProcCall = GrpcServerCall<ProcessingResponse>;
