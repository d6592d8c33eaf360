// The echo model backends: what they echo, the identity they report, X-Echo-Set-Header,
// injected latency/errors/resets, IPv6, and that stop() really closes the port.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EchoBackend } from '../../harness/backends/echo-backend.ts';

function connectable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

describe('echo backend', () => {
  it('echoes method, path, query, headers, body size and sha256 with its identity', async () => {
    await using b = await new EchoBackend('pod-a').withHost('127.0.0.2').withPort(0).start();
    const body = Buffer.from('{"model":"m","prompt":"hello"}');
    const res = await fetch(`http://${b.address}/v1/completions?a=1&a=2&b=x%20y`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'v' },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-inference-pod')).toBe('pod-a');
    expect(res.headers.get('x-inference-port')).toBe(String(b.port));
    const j = (await res.json()) as Record<string, any>;
    expect(j.backend).toEqual({ name: 'pod-a', ip: '127.0.0.2', port: b.port, address: `127.0.0.2:${b.port}` });
    expect(j.request.method).toBe('POST');
    expect(j.request.path).toBe('/v1/completions');
    expect(j.request.query).toEqual([['a', '1'], ['a', '2'], ['b', 'x y']]);
    expect(j.request.rawQuery).toBe('a=1&a=2&b=x%20y');
    expect(j.request.headers['x-custom']).toBe('v');
    expect(j.request.bodyBytes).toBe(body.length);
    expect(j.request.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(j.object).toBe('text_completion');
    expect(b.received).toHaveLength(1);
  });

  it('answers /v1/models, /v1/chat/completions, /health and /metrics', async () => {
    await using b = await new EchoBackend('pod-b').withHost('127.0.0.3').start();
    expect(((await (await fetch(`http://${b.address}/v1/models`)).json()) as any).data[0].id).toBe('eppkit-echo');
    const chat = (await (await fetch(`http://${b.address}/v1/chat/completions`, { method: 'POST', body: '{}' })).json()) as any;
    expect(chat.choices[0].message.content).toBe('served by pod-b');
    expect((await fetch(`http://${b.address}/health`)).status).toBe(200);
    expect(await (await fetch(`http://${b.address}/metrics`)).text()).toContain('vllm:num_requests_waiting');
  });

  it('honours X-Echo-Set-Header (several pairs, values with colons)', async () => {
    await using b = await new EchoBackend('pod-a').withHost('127.0.0.2').start();
    const res = await fetch(`http://${b.address}/v1/models`, {
      headers: { 'x-echo-set-header': 'x-conformance-test-served-endpoint:127.0.0.9:8000,x-other: two' },
    });
    expect(res.headers.get('x-conformance-test-served-endpoint')).toBe('127.0.0.9:8000');
    expect(res.headers.get('x-other')).toBe('two');
  });

  it('injects errors and resets per request, and errors for every request by config', async () => {
    await using b = await new EchoBackend('pod-a').withHost('127.0.0.2').start();
    const r = await fetch(`http://${b.address}/v1/completions`, { method: 'POST', headers: { 'x-echo-status': '429' }, body: 'x' });
    expect(r.status).toBe(429);
    expect(((await r.json()) as any).error.type).toBe('eppkit_injected');
    await expect(fetch(`http://${b.address}/v1/completions`, { method: 'POST', headers: { 'x-echo-reset': 'true' }, body: 'x' })).rejects.toThrow();
    await using sick = await new EchoBackend('sick').withHost('127.0.0.2').withErrorStatus(503).start();
    expect((await fetch(`http://${sick.address}/v1/completions`, { method: 'POST', body: 'x' })).status).toBe(503);
    expect((await fetch(`http://${sick.address}/health`)).status).toBe(200);
  });

  it('delays by header (x-echo-delay-ms) before answering', async () => {
    await using b = await new EchoBackend('pod-a').withHost('127.0.0.2').start();
    const ac = new AbortController();
    const slow = fetch(`http://${b.address}/v1/models`, { headers: { 'x-echo-delay-ms': '60000' }, signal: ac.signal });
    const raced = await Promise.race([slow.then(() => 'answered'), new Promise((r) => setTimeout(() => r('still waiting'), 300))]);
    expect(raced).toBe('still waiting');
    ac.abort();
    await slow.catch(() => {});
  });

  it('listens on IPv6 loopback with a bracketed address', async () => {
    await using b = await new EchoBackend('pod-v6').withHost('::1').start();
    expect(b.address).toBe(`[::1]:${b.port}`);
    const j = (await (await fetch(`http://${b.address}/v1/models`)).json()) as any;
    expect(j.backend.address).toBe(`[::1]:${b.port}`);
  });

  it('stop() closes the port, open keep-alive connections included', async () => {
    const b = await new EchoBackend('pod-a').withHost('127.0.0.2').start();
    await fetch(`http://${b.address}/v1/models`);
    expect(await connectable('127.0.0.2', b.port)).toBe(true);
    await b.stop();
    expect(await connectable('127.0.0.2', b.port)).toBe(false);
  });

  it('keeps only the last N requests (withMaxReceived), oldest first, and counts them all', async () => {
    await using b = await new EchoBackend('pod-a').withHost('127.0.0.2').withMaxReceived(3).start();
    for (let i = 1; i <= 5; i++) await (await fetch(`http://${b.address}/v1/models?i=${i}`)).arrayBuffer();
    await (await fetch(`http://${b.address}/health`)).arrayBuffer();
    expect(b.received.map((r) => r.rawQuery)).toEqual(['i=3', 'i=4', 'i=5']);
    expect(b.receivedTotal).toBe(5);
    // A snapshot: what a test holds does not change under it.
    const snap = b.received;
    await (await fetch(`http://${b.address}/v1/models?i=6`)).arrayBuffer();
    expect(snap.map((r) => r.rawQuery)).toEqual(['i=3', 'i=4', 'i=5']);
    expect(b.received.map((r) => r.rawQuery)).toEqual(['i=4', 'i=5', 'i=6']);

    await using none = await new EchoBackend('pod-b').withHost('127.0.0.2').withMaxReceived(0).start();
    await (await fetch(`http://${none.address}/v1/models`)).arrayBuffer();
    expect(none.received).toEqual([]);
    expect(none.receivedTotal).toBe(1);
    expect(() => new EchoBackend('x').withMaxReceived(-1)).toThrow(/non-negative integer/);
    expect(() => new EchoBackend('x').withMaxReceived(1.5)).toThrow(/non-negative integer/);
  });

  it('caps received at 1,000 by default, however many requests come', async () => {
    await using b = await new EchoBackend('pod-a').withHost('127.0.0.2').start();
    const send = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) await (await fetch(`http://${b.address}/v1/models?i=${i}`)).arrayBuffer();
    };
    // 1,010 requests over 10 keep-alive loops, each loop its own range of i.
    await Promise.all(Array.from({ length: 10 }, (_, k) => send(k * 101, (k + 1) * 101)));
    expect(b.receivedTotal).toBe(1010);
    const kept = b.received;
    expect(kept).toHaveLength(1000);
    expect(new Set(kept.map((r) => r.rawQuery)).size).toBe(1000);
  }, 60_000);

  it('`eppkit backend` refuses a bad --max-received without a stack trace', () => {
    const bin = new URL('../../bin/eppkit.js', import.meta.url).pathname;
    const r = spawnSync(process.execPath, [bin, 'backend', '--listen', '127.0.0.4:0', '--max-received', '-5'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--max-received must be a non-negative integer');
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('`eppkit backend` runs one by hand and stops on SIGTERM', async () => {
    const bin = new URL('../../bin/eppkit.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, 'backend', '--listen', '127.0.0.4:0', '--name', 'by-hand', '--max-received', '10'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = out.match(/listening on (http:\/\/\S+)/);
        if (m?.[1]) resolve(m[1]);
      });
      child.once('exit', (c) => reject(new Error(`exited ${c}`)));
    });
    const res = await fetch(`${url}/v1/models`);
    expect(res.headers.get('x-inference-pod')).toBe('by-hand');
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
