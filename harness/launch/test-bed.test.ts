import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EchoBackend } from '../backends/echo-backend.ts';
import { TestBed } from './test-bed.ts';
import { Wait } from './wait-strategy.ts';

describe('TestBed', () => {
  it('stops everything, last started first, once, even when one stop fails', async () => {
    const order: string[] = [];
    const thing = (name: string, fail = false): AsyncDisposable => ({
      [Symbol.asyncDispose]: async () => {
        order.push(name);
        if (fail) throw new Error(`${name} would not stop`);
      },
    });
    const bed = new TestBed({ workDir: mkdtempSync(join(tmpdir(), 'eppkit-bed-')), runtime: 'local' });
    bed.use(thing('backend'));
    bed.use(thing('epp', true));
    bed.use(thing('plane'));
    await bed[Symbol.asyncDispose]();
    await bed[Symbol.asyncDispose]();
    expect(order).toEqual(['plane', 'epp', 'backend']);
  });

  it('backends and processes it started are gone when it is disposed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-bed-'));
    let backendUrl = '';
    let pid: number | undefined;
    {
      await using bed = new TestBed({ workDir: dir, runtime: 'local' });
      const b = await bed.withEchoBackend(new EchoBackend('a').withHost('127.0.0.1'));
      backendUrl = `http://${b.address}/health`;
      expect((await fetch(backendUrl)).status).toBe(200);
      const p = await bed.withLaunched({ what: 'sleeper', image: '', command: ['sh', '-c', 'echo up; exec sleep 60'], waitFor: Wait.forLogLine(/up/) });
      pid = p.pid;
    }
    await expect(fetch(backendUrl)).rejects.toThrow();
    expect(() => process.kill(pid!, 0)).toThrow();
  });
});
