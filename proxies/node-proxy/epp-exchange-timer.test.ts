// The EPP timeout on a starved CPU: Node runs expired timers before it reads sockets, so when one
// loop iteration outlasts the timeout (a busy machine, a burst), an answer already sitting in
// the socket used to lose to the timer and the request failed with epp_timeout although the EPP
// had answered in time. The exchange now decides after that iteration's I/O.
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { rawHeader } from '../../core/headers.ts';
import { silentLogger } from '../../core/logger.ts';
import type { ProcessingResponse } from '../../core/proto.ts';
import { Allowlist } from './endpoint.ts';
import { EppExchange } from './epp-exchange.ts';
import { ProxyMetrics } from './proxy-metrics.ts';

class FakeCall extends EventEmitter {
  write(): void {}
  end(): void {}
  cancel(): void {}
}

const PICK = {
  response: 'request_headers',
  request_headers: { response: { header_mutation: { set_headers: [{ header: rawHeader('x-gateway-destination-endpoint', '127.0.0.2:8000') }] } } },
} as unknown as ProcessingResponse;

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the event loop is blocked, as on a starved CPU
  }
}

describe('EppExchange timeout on a blocked event loop', () => {
  it('an answer that reached the socket before the loop got to the expired timer wins', async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    const [peer] = (await accepted) as [net.Socket];
    try {
      const call = new FakeCall();
      // The socket stands for the EPP connection: its bytes are the pick arriving.
      client.on('data', () => call.emit('data', PICK));
      const ex = new EppExchange({ Process: () => call } as never, {
        timeoutMs: 20,
        bodyMode: 'none',
        allow: new Allowlist([]),
        metrics: new ProxyMetrics(),
        log: silentLogger,
        responseProcessing: false,
      });
      ex.sendHeaders([rawHeader(':method', 'GET'), rawHeader(':path', '/')], true);
      // The answer is in the kernel's buffer now (libuv writes at once when it can)...
      peer.write('x');
      // ...and the loop is held past the 20 ms timeout before it can read it.
      busyWait(120);
      const d = await ex.decision;
      expect(d.kind).toBe('route');
      ex.cancel();
    } finally {
      client.destroy();
      peer.destroy();
      server.close();
    }
  });

  it('with no answer at all, the timeout still fails the exchange', async () => {
    const call = new FakeCall();
    const ex = new EppExchange({ Process: () => call } as never, { timeoutMs: 20, bodyMode: 'none', allow: new Allowlist([]), metrics: new ProxyMetrics(), log: silentLogger, responseProcessing: false });
    ex.sendHeaders([rawHeader(':method', 'GET')], true);
    const d = await ex.decision;
    expect(d).toMatchObject({ kind: 'fail', reason: 'epp_timeout' });
  });
});
