// Fidelity profiles: named sets of the behaviour switches where real Endpoint Pickers differ
// from a forgiving mock. Each profile models one measured EPP (facts file §6); every switch
// can also be set on its own in the mock's config, over the profile's value.
//
// The default is the strictest real EPP (the lightweight EPP the upstream conformance suite
// deploys), so that a data plane green here works with it. `lenient` is the mock's behaviour
// before profiles existed, for users who depend on it.

export const PROFILES = ['gie-lwepp', 'gie-epp', 'lenient'] as const;
export type ProfileName = (typeof PROFILES)[number];
export const DEFAULT_PROFILE: ProfileName = 'gie-lwepp';

export const HOLD_HEADERS = ['until-body-end', 'auto', 'when-needed', 'always', 'never'] as const;
export type HoldHeaders = (typeof HOLD_HEADERS)[number];

/** What "no endpoint" (subset hint or selection header matching nothing, empty pool) becomes. */
export type NoEndpointAnswer = { grpcStatus: number; message?: string } | { status: number };

export interface ResponseHeadersAnswer {
  /** `x-conformance-test-served-endpoint`: the served endpoint the data plane reported (or `fail: ...`). */
  servedEndpoint: boolean;
  /** `x-went-into-resp-headers: true`. */
  wentInto: boolean;
  /** Every response header received, set back (pseudo-headers included, as the real EPPs do). */
  echo: boolean;
}

export interface FidelitySwitches {
  /**
   * When the request-headers answer is sent. `until-body-end`: held whenever the request
   * headers do not end the stream, until the body has ended, whatever the body mode (the real
   * EPPs look only at end_of_stream: a plane that waits for the headers answer deadlocks).
   * `auto`: held only when the client declares it sends the body without waiting
   * (FULL_DUPLEX_STREAMED, send_body_without_waiting_for_header_response, no protocol_config).
   * `when-needed`: as auto, only if a rule or the picker reads the body. `always`: held
   * whenever a body follows in the declared body mode. `never`.
   */
  holdHeaders: HoldHeaders;
  noEndpoint: NoEndpointAnswer;
  /** `clear_route_cache: true` on every request-headers answer. */
  clearRouteCache: boolean;
  responseHeadersAnswer: ResponseHeadersAnswer;
  /** Echo every request header (pseudo-headers included) and set Content-Length in the headers answer. */
  echoRequestHeaders: boolean;
  /**
   * How header mutations carry `append`: `unset` (only raw_value, as the real EPPs send),
   * `bool-value` (`append: BoolValue{false}`, catches planes that decode it as a plain bool),
   * `append-action` (`append_action: OVERWRITE_IF_EXISTS_OR_ADD`).
   */
  append: 'unset' | 'bool-value' | 'append-action';
  /** A request body ended by trailers: `stall` (never answered, as the real EPPs) or `answer`. */
  trailers: 'stall' | 'answer';
  /** An empty `test-epp-endpoint-selection` header: `whole-pool` or `no-endpoint`. */
  emptySelection: 'whole-pool' | 'no-endpoint';
  /**
   * Body answers: `empty` (an empty BodyResponse per body message, every mode) or
   * `streamed-echo` (FULL_DUPLEX_STREAMED: the body echoed as streamed_response).
   */
  bodyAnswer: 'empty' | 'streamed-echo';
  /**
   * Opt-in defect of the lightweight EPP at one commit: with the body in two or more
   * messages, answer the earlier ones before the headers answer (out of order). Real Envoy
   * rejects that (`spurious_message`); use it to prove a plane does too.
   */
  bodyAnswerBeforeHeaders: boolean;
  /** `X-Echo-Set-Header: x-conformance-test-served-endpoint:<ip:port>` in the headers answer. */
  conformanceEchoHeader: boolean;
}

const GRPC_INTERNAL = 13;

/** The switches of each profile. Frozen: the tests and docs/mock-epp.md read them. */
export const PROFILE_SWITCHES: Readonly<Record<ProfileName, Readonly<FidelitySwitches>>> = Object.freeze({
  // Lightweight EPP (pkg/lwepp at head; what the conformance suite deploys).
  'gie-lwepp': Object.freeze<FidelitySwitches>({
    holdHeaders: 'until-body-end',
    noEndpoint: { grpcStatus: GRPC_INTERNAL, message: 'internal error: no endpoint available' },
    clearRouteCache: true,
    responseHeadersAnswer: { servedEndpoint: true, wentInto: true, echo: true },
    echoRequestHeaders: false,
    append: 'unset',
    trailers: 'stall',
    emptySelection: 'whole-pool',
    bodyAnswer: 'empty',
    bodyAnswerBeforeHeaders: false,
    conformanceEchoHeader: true,
  }),
  // Full EPP (pkg/epp before its removal).
  'gie-epp': Object.freeze<FidelitySwitches>({
    holdHeaders: 'until-body-end',
    noEndpoint: { status: 429 },
    clearRouteCache: true,
    responseHeadersAnswer: { servedEndpoint: false, wentInto: true, echo: true },
    echoRequestHeaders: true,
    append: 'unset',
    trailers: 'stall',
    emptySelection: 'no-endpoint',
    bodyAnswer: 'streamed-echo',
    bodyAnswerBeforeHeaders: false,
    conformanceEchoHeader: false,
  }),
  // The mock before profiles: answers whatever a plane expects.
  lenient: Object.freeze<FidelitySwitches>({
    holdHeaders: 'auto',
    noEndpoint: { status: 503 },
    clearRouteCache: false,
    responseHeadersAnswer: { servedEndpoint: false, wentInto: false, echo: false },
    echoRequestHeaders: false,
    append: 'bool-value',
    trailers: 'answer',
    emptySelection: 'no-endpoint',
    bodyAnswer: 'streamed-echo',
    bodyAnswerBeforeHeaders: false,
    conformanceEchoHeader: true,
  }),
});

/** Which real EPP each profile models (docs, `eppkit mock-epp --help`). */
export const PROFILE_MODELS: Readonly<Record<ProfileName, string>> = {
  'gie-lwepp': 'the lightweight EPP of the Gateway API Inference Extension (pkg/lwepp, deployed by its conformance suite); the default',
  'gie-epp': 'the full EPP of the Gateway API Inference Extension (pkg/epp, before its removal)',
  lenient: "eppkit's mock before profiles: answers headers at once when the plane waits, 503 for no endpoint, nothing on the response phase",
};
