// Three places where node-proxy answered differently from Envoy's ext_proc filter (two found by
// eppkit fuzz, one by the headers-only plane file), each against a real node-proxy, a real
// gRPC EPP and a real backend:
// - a body-phase timeout after the pick (buffered): Envoy 504 on FailClose, not a route;
// - an ImmediateResponse after the headers answer while the body streams (full duplex):
//   Envoy relays it (docs/ext-proc-behaviour.md §2), not a 500;
// - an EPP failure answered before the request body was read: the keep-alive connection
//   goes on with the next request (Envoy reads the body), it is not closed.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawHeader } from '../../core/headers.ts';
import { silentLogger } from '../../core/logger.ts';
import { MockEpp, type StartedMockEpp } from '../../mock-epp/mock-epp.ts';
import { NodeProxy, type StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import type { NodeProxyInput } from '../../proxies/node-proxy/node-proxy-config.ts';
import { startEchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import { eventually } from '../support/eventually.ts';
import { nothingOpen } from '../support/nothing-open.ts';
import { startScriptedEpp } from '../../proxies/node-proxy/test-support/scripted-epp.ts';

let backend: StartedEchoBackend;
let fallback: StartedEchoBackend;
let epp: StartedMockEpp;

beforeAll(async () => {
  backend = await startEchoBackend();
  fallback = await startEchoBackend();
  epp = await new MockEpp({ endpoints: [backend.address] }).withPort(0).withAdminPort(null).start();
});
afterAll(async () => {
  await epp?.stop();
  await backend?.stop();
  await fallback?.stop();
});

function proxy(extra: Partial<NodeProxyInput>): Promise<StartedNodeProxy> {
  return new NodeProxy({ listen: '127.0.0.1:0', eppAddress: epp.address, failureMode: 'close', timeoutMs: 1000, ...extra }).withLogger(silentLogger).start();
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One client connection written byte for byte; reads responses (content-length or chunked) in order. */
class RawConnection {
  readonly socket: net.Socket;
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static async open(url: string): Promise<RawConnection> {
    const u = new URL(url);
    const s = net.connect(Number(u.port), u.hostname);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new RawConnection(s);
  }

  write(s: string): void {
    this.socket.write(s);
  }

  async response(): Promise<RawResponse> {
    for (;;) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number((lines[0] ?? '').split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        if (headers['transfer-encoding'] === 'chunked') {
          // Chunks until the zero-size one (no trailers in these tests).
          let at = end + 4;
          let body = '';
          for (;;) {
            const eol = this.#buf.indexOf('\r\n', at);
            if (eol < 0) break;
            const size = Number.parseInt(this.#buf.subarray(at, eol).toString('latin1'), 16);
            if (this.#buf.length < eol + 2 + size + 2) break;
            if (size === 0) {
              this.#buf = this.#buf.subarray(eol + 4);
              return { status, headers, body };
            }
            body += this.#buf.subarray(eol + 2, eol + 2 + size).toString();
            at = eol + 2 + size + 2;
          }
        } else {
          const len = Number(headers['content-length'] ?? 0);
          if (this.#buf.length >= end + 4 + len) {
            const body = this.#buf.subarray(end + 4, end + 4 + len).toString();
            this.#buf = this.#buf.subarray(end + 4 + len);
            return { status, headers, body };
          }
        }
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buf.toString('latin1').slice(0, 200))}`);
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('node-proxy answers as Envoy does', () => {
  it('buffered, FailClose: the EPP picks on the headers, then never answers the body: 504 epp_timeout, not routed', async () => {
    await using s = await startScriptedEpp((call, msg) => {
      // The pick at once, before the body has even been sent; the body answer never comes.
      if (msg.request === 'request_headers') call.write({ request_headers: { response: { header_mutation: { set_headers: [{ header: rawHeader('x-gateway-destination-endpoint', backend.address) }] } } } });
    });
    await using p = await proxy({ eppAddress: s.address, bodyMode: 'buffered', timeoutMs: 300 });
    const c = await RawConnection.open(p.url);
    try {
      c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n');
      // The body only once the pick reached the proxy (the EPP answered the headers message).
      await eventually(() => (s.streams[0]?.length ?? 0) >= 1, 'headers at the EPP');
      await new Promise((r) => setTimeout(r, 50));
      c.write('hello');
      await eventually(() => (s.streams[0]?.length ?? 0) >= 2, 'body at the EPP');
      const r = await c.response();
      expect(r.status).toBe(504);
      expect(r.headers['x-eppkit-reason']).toBe('epp_timeout');
      expect(backend.received.filter((x) => x.method === 'POST')).toHaveLength(0);
    } finally {
      c.close();
    }
    await nothingOpen(p);
  });

  it('streamed (full duplex): an ImmediateResponse after the headers answer, mid-body, is relayed to the client (not 500)', async () => {
    await using s = await startScriptedEpp((call, msg) => {
      if (msg.request !== 'request_headers') return;
      call.write({ request_headers: { response: { header_mutation: { set_headers: [{ header: rawHeader('x-gateway-destination-endpoint', backend.address) }] } } } });
      call.write({ immediate_response: { status: { code: 200 }, body: Buffer.from('answered by the EPP') } });
    });
    await using p = await proxy({ eppAddress: s.address, bodyMode: 'streamed' });
    const c = await RawConnection.open(p.url);
    try {
      c.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8191\r\n\r\n${'b'.repeat(8191)}`);
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.body).toBe('answered by the EPP');
      expect(r.headers['x-inference-port']).toBeUndefined();
      // The connection goes on.
      c.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
      expect((await c.response()).status).toBe(200);
    } finally {
      c.close();
    }
    await nothingOpen(p);
  });

  it.each(['none', 'buffered', 'streamed'] as const)(
    '%s: an EPP failure answered before the body was read keeps the keep-alive connection for the next request',
    async (bodyMode) => {
      await using p = await proxy({ bodyMode });
      const c = await RawConnection.open(p.url);
      try {
        // The whole request at once (as the catalogue's keep-alive scenarios send it).
        c.write('POST / HTTP/1.1\r\nHost: x\r\nx-eppkit-grpc-error: INTERNAL\r\nContent-Length: 5\r\n\r\nhello');
        const failed = await c.response();
        expect(failed.status).toBe(500);
        expect(failed.headers.connection).not.toBe('close');
        c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok');
        const next = await c.response();
        expect(next.status).toBe(200);
        expect(next.headers['x-inference-port']).toBe(String(backend.port));
        if (bodyMode === 'none') {
          // The body only after the answer (nothing waits for it in mode none; the mock, like
          // the real EPPs, answers the other modes only once the body has ended): drained, and
          // the connection still goes on.
          c.write('POST / HTTP/1.1\r\nHost: x\r\nx-eppkit-grpc-error: INTERNAL\r\nContent-Length: 5\r\n\r\n');
          expect((await c.response()).status).toBe(500);
          c.write('hello');
          c.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
          expect((await c.response()).status).toBe(200);
        }
        expect(c.closed).toBe(false);
      } finally {
        c.close();
      }
      await nothingOpen(p);
    },
  );

  it('a body over the limit still closes the connection after its 413 (never drained)', async () => {
    await using p = await proxy({ bodyMode: 'none', maxBodyBytes: 10 });
    const c = await RawConnection.open(p.url);
    try {
      c.write('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n');
      const r = await c.response();
      expect(r.status).toBe(413);
      await eventually(() => c.closed, 'connection closed');
    } finally {
      c.close();
    }
  });
});
