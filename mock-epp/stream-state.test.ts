import { describe, expect, it } from 'vitest';
import { BodySendMode } from '../core/proto.ts';
import { bodyModesOf } from './stream-state.ts';

describe('bodyModesOf', () => {
  it('takes protocol_config; Envoy waits for the headers answer except in full duplex or send_body_without_waiting', () => {
    const buffered = bodyModesOf({ protocol_config: { request_body_mode: BodySendMode.BUFFERED } }, 'NONE');
    expect(buffered).toMatchObject({ request: BodySendMode.BUFFERED, response: 0, waitsForHeadersAnswer: true, journal: { request: 'BUFFERED', response: 'NONE' } });
    expect(buffered.protocolConfig).toEqual({ requestBodyMode: 'BUFFERED', responseBodyMode: 'NONE', sendBodyWithoutWaitingForHeaderResponse: false });
    expect(bodyModesOf({ protocol_config: { request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED } }, 'NONE').waitsForHeadersAnswer).toBe(false);
    expect(bodyModesOf({ protocol_config: { request_body_mode: BodySendMode.BUFFERED, send_body_without_waiting_for_header_response: true } }, 'NONE').waitsForHeadersAnswer).toBe(false);
  });
  it('without protocol_config: the config default for both directions, body sent at once', () => {
    const m = bodyModesOf({}, 'STREAMED');
    expect(m).toMatchObject({ request: BodySendMode.STREAMED, response: BodySendMode.STREAMED, waitsForHeadersAnswer: false, protocolConfig: undefined });
    expect(bodyModesOf({ protocol_config: { request_body_mode: 9 } }, 'NONE').journal.request).toBe('UNKNOWN(9)');
  });
});
