// sendLocal answers with the proxy's own response (an EPP's ImmediateResponse, a fail-close
// error). Headers HTTP cannot carry are left out, never a reset of the client's connection.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { sendLocal } from './proxy-request.ts';

describe('sendLocal', () => {
  it('leaves out a header with a control byte or a bad name and still answers', async () => {
    const server = http.createServer((_req, res) => {
      sendLocal(res, 403, [['x-ok', 'fine'], ['x-ctl', 'a\x01b'], ['x-del', 'a\x7fb'], ['bad name', 'v'], ['x-tab', 'a\tb']], 'denied');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).toBe(403);
      expect(await res.text()).toBe('denied');
      expect(res.headers.get('x-ok')).toBe('fine');
      expect(res.headers.get('x-tab')).toBe('a\tb');
      expect(res.headers.has('x-ctl')).toBe(false);
      expect(res.headers.has('x-del')).toBe(false);
    } finally {
      server.close();
    }
  });
});
