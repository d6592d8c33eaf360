// Every request ends with exactly one outcome and one reason code: one log line and one
// metric increment (`eppkit_node_proxy_requests_total{outcome,reason,status}`).
// docs/node-proxy.md has the table; keep both in step.

export type Outcome =
  /** Proxied to the endpoint the EPP picked. */
  | 'routed'
  /** Proxied to a fallback endpoint because the EPP failed and the route fails open. */
  | 'fallback'
  /** The EPP answered with an ImmediateResponse, relayed to the client. */
  | 'immediate'
  /** The EPP failed and the route fails closed (or fail-open had nowhere to go). */
  | 'epp_failure'
  /** The request itself was refused (size limits, malformed, no route). */
  | 'rejected'
  /** The upstream could not be reached or broke. */
  | 'upstream_failure'
  /** The client went away first. */
  | 'client_abort'
  /** Shim mode: the endpoint was returned to the caller. */
  | 'picked';

/** Why an EPP exchange failed; each maps to a status by the failure table. */
export type EppFailureReason =
  | 'epp_unavailable' // channel could not connect / stream could not open (gRPC UNAVAILABLE)
  | 'epp_grpc_error' // the EPP ended the stream with a non-OK status
  | 'epp_timeout' // no answer within timeoutMs
  | 'epp_closed' // the EPP ended the stream with OK before deciding
  | 'epp_protocol_error' // a response of the wrong phase or an empty oneof
  | 'endpoint_missing' // headers answered without any endpoint
  | 'endpoint_invalid' // the endpoint value is not a literal ip:port list
  | 'endpoint_not_allowed'; // every endpoint is outside the allowlist

export type ReasonCode =
  | EppFailureReason
  | 'ok'
  | 'immediate_response'
  | 'body_too_large'
  | 'headers_too_large'
  | 'bad_request'
  | 'bbr_no_model' // body-based routing with requireModel: no usable model in the body
  | 'no_route'
  | 'no_fallback'
  | 'upstream_connect_failed'
  | 'upstream_reset'
  | 'upstream_timeout'
  | 'bad_upstream_request' // the request, as the EPP's mutations left it, cannot be written
  | 'client_abort'
  | 'shim_missing_epp'
  | 'internal_error';

/** Status of a fail-close answer (Envoy's table: 504 on timeout, 500 otherwise). */
export function failCloseStatus(reason: EppFailureReason): number {
  return reason === 'epp_timeout' ? 504 : 500;
}
