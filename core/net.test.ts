import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { canConnect, freePort } from './net.ts';

describe('loopback helpers', () => {
  it('finds a free port, and canConnect tells a listening port from a closed one', async () => {
    const port = await freePort('127.0.0.1');
    expect(port).toBeGreaterThan(0);
    expect(await canConnect('127.0.0.1', port)).toBe(false);
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      expect(await canConnect('127.0.0.1', port)).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
