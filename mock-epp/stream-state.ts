// The state of one ext_proc stream, per direction, as Envoy's ext_proc filter keeps it:
// explicit named states instead of a set of booleans, so every check reads as the question
// it asks ("is the headers answer still held?"). Plain objects, not enums: eppkit runs on
// Node's type stripping, which has no enums.
import { BodySendMode, type ProcessingRequest } from '../core/proto.ts';
import { BODY_MODE_NAMES, type BodyModeName } from './mock-epp-config.ts';
import type { JournalEntry } from './journal.ts';

/** The stream as a whole. */
export const StreamState = {
  Open: 'open',
  /** The client has half-closed: answers still owed are sent, then the stream completes. */
  HalfClosed: 'half-closed',
  /** A rule's `hang`: nothing more is read or answered until the client gives up. */
  Hung: 'hung',
  Finished: 'finished',
} as const;
export type StreamState = (typeof StreamState)[keyof typeof StreamState];

/** What the request direction has received. */
export const RequestState = {
  AwaitingHeaders: 'awaiting-headers',
  /** Headers in; body messages may follow. */
  Body: 'body',
  /** Headers and the whole body (end_of_stream, trailers, or no body) are in. */
  Ended: 'ended',
} as const;
export type RequestState = (typeof RequestState)[keyof typeof RequestState];

/** The request-headers answer, the one that carries the pick. */
export const HeadersAnswer = {
  NotDue: 'not-due',
  /** Held until the request body ends (the real EPPs' way). */
  Held: 'held',
  /** Was held; the body has ended, it is being sent now (a delay or fault may still stop it). */
  Released: 'released',
  /** Due at once; being sent (a delay or fault may still stop it). */
  Due: 'due',
  Sent: 'sent',
} as const;
export type HeadersAnswer = (typeof HeadersAnswer)[keyof typeof HeadersAnswer];

/** What the response direction has received. */
export const ResponseState = {
  AwaitingHeaders: 'awaiting-headers',
  AfterHeaders: 'after-headers',
} as const;
export type ResponseState = (typeof ResponseState)[keyof typeof ResponseState];

/** Body modes in effect, from the first message's protocol_config or the config's default. */
export interface BodyModes {
  request: number;
  response: number;
  /** Whether the data plane sends the request body only after the headers answer (Envoy's default). */
  waitsForHeadersAnswer: boolean;
  /** As the journal shows them. */
  journal: JournalEntry['bodyMode'];
  protocolConfig: JournalEntry['protocolConfig'];
}

function modeName(n: number): string {
  return BODY_MODE_NAMES[n] ?? `UNKNOWN(${n})`;
}

// A handful of combinations in practice: one frozen object each, shared by every stream.
const modesCache = new Map<number, BodyModes>();

export function bodyModesOf(m: ProcessingRequest, defaultBodyMode: BodyModeName): BodyModes {
  const pc = m.protocol_config;
  const def = BODY_MODE_NAMES.indexOf(defaultBodyMode);
  const request = pc ? (pc.request_body_mode ?? 0) : def;
  const response = pc ? (pc.response_body_mode ?? 0) : def;
  const swo = pc?.send_body_without_waiting_for_header_response === true;
  // A number, not a string: no key to build for every stream. Modes past 1023 (garbage) are not cached.
  const cacheable = request >= 0 && request < 1024 && response >= 0 && response < 1024;
  const key = (pc ? 1 : 0) + (swo ? 2 : 0) + request * 4 + response * 4096;
  let modes = cacheable ? modesCache.get(key) : undefined;
  if (modes) return modes;
  const journal = Object.freeze({ request: modeName(request), response: modeName(response) });
  modes = Object.freeze({
    request,
    response,
    // Envoy sends the body only after the headers answer, except in these two cases. Clients
    // without protocol_config (NGF shim, eppkit proxies) send headers then body at once.
    waitsForHeadersAnswer: pc ? !(request === BodySendMode.FULL_DUPLEX_STREAMED || swo) : false,
    journal,
    protocolConfig: pc ? Object.freeze({ requestBodyMode: journal.request, responseBodyMode: journal.response, sendBodyWithoutWaitingForHeaderResponse: swo }) : undefined,
  });
  if (cacheable && modesCache.size < 1000) modesCache.set(key, modes);
  return modes;
}
