// The harness's control of the mock EPP child process: stop (SIGTERM) and kill (SIGKILL)
// really close its port, restart brings it back on the same gRPC and admin ports, and the
// journal survives restarts.
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MockEppProcess } from '../../harness/epp/mock-epp-process.ts';
import { ExtProcTestClient, envoyHeaders } from '../../mock-epp/ext-proc-client.ts';

function connectable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

describe('MockEppProcess', () => {
  it('kills and restarts the mock on the same ports; the journal is kept across incarnations', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'eppkit-mockproc-'));
    await using epp = await MockEppProcess.start({ workDir, config: { endpoints: ['127.0.0.2:8000'] } });
    const { port, adminPort } = epp;
    expect(port).toBeGreaterThan(0);
    expect(await connectable(port)).toBe(true);
    expect((await fetch(`${epp.adminUrl}/healthz`)).status).toBe(200);

    await epp.kill();
    expect(epp.running).toBe(false);
    expect(await connectable(port)).toBe(false);
    expect(await connectable(adminPort)).toBe(false);

    await epp.startAgain();
    expect(epp.port).toBe(port);
    expect(epp.adminPort).toBe(adminPort);
    expect(await connectable(port)).toBe(true);

    await epp.setConfig({ endpoints: ['127.0.0.3:9000'] });
    await epp.restart();
    expect(epp.port).toBe(port);
    const cfg = (await (await fetch(`${epp.adminUrl}/config`)).json()) as { endpoints: string[] };
    expect(cfg.endpoints).toEqual(['127.0.0.3:9000']);
    await epp.stop();
    expect(await connectable(port)).toBe(false);
  }, 60_000);

  it('records streams in the journal and keeps them after a kill and restart', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'eppkit-mockproc-'));
    await using epp = await MockEppProcess.start({ workDir, config: { endpoints: ['127.0.0.2:8000'] } });
    const pick = async (): Promise<void> => {
      const client = new ExtProcTestClient(epp.address);
      const s = client.open();
      s.send({ request_headers: { headers: { headers: envoyHeaders({}) }, end_of_stream: true } } as never);
      expect(await s.next()).toBeDefined();
      s.end();
      await s.outcome;
      client.close();
    };
    await pick();
    expect(await epp.waitForJournal(1, 5000)).toHaveLength(1);
    await epp.kill();
    await epp.startAgain();
    await pick();
    const all = await epp.waitForJournal(2, 5000);
    expect(all).toHaveLength(2);
    expect(all.map((e) => (e.pick as { value: string }).value)).toEqual(['127.0.0.2:8000', '127.0.0.2:8000']);
    await epp.clearJournal();
    expect(await epp.journal()).toHaveLength(0);
  }, 30_000);
});
