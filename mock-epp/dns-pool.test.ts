import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.ts';
import { DnsPool, endpointsOf, parseDnsTarget, type DnsPoolTarget } from './dns-pool.ts';

function target(endpoints: string[]): DnsPoolTarget & { sets: number } {
  const t = {
    sets: 0,
    config: { endpoints },
    setConfig(input: unknown) {
      t.sets++;
      t.config = { endpoints: (input as { endpoints: string[] }).endpoints };
    },
  };
  return t;
}

describe('parseDnsTarget / endpointsOf', () => {
  it('takes name:port and literal addresses; refuses the rest with the usage', () => {
    expect(parseDnsTarget('eppkit-echo-pods:8000')).toEqual({ host: 'eppkit-echo-pods', port: 8000 });
    expect(parseDnsTarget('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseDnsTarget('no-port')).toThrow(/name:port/);
    expect(() => parseDnsTarget('a:0')).toThrow(/name:port/);
  });
  it('brackets IPv6, sorts and de-duplicates', () => {
    expect(endpointsOf([{ address: '10.0.0.2', family: 4 }, { address: 'fd00::1', family: 6 }, { address: '10.0.0.1', family: 4 }, { address: '10.0.0.2', family: 4 }], 8000)).toEqual([
      '10.0.0.1:8000',
      '10.0.0.2:8000',
      '[fd00::1]:8000',
    ]);
  });
});

describe('DnsPool.refresh', () => {
  it('installs the pool when the answer changes, only then, and keeps it when resolution fails', async () => {
    let answer: Array<{ address: string; family: number }> | Error = [{ address: '10.0.0.1', family: 4 }];
    const pool = new DnsPool('pods:8000', 1000, async () => {
      if (answer instanceof Error) throw answer;
      return answer;
    });
    const epp = target([]);
    await pool.refresh(epp, silentLogger);
    expect(epp.config.endpoints).toEqual(['10.0.0.1:8000']);
    await pool.refresh(epp, silentLogger);
    expect(epp.sets).toBe(1);
    answer = [{ address: '10.0.0.2', family: 4 }, { address: '10.0.0.1', family: 4 }];
    await pool.refresh(epp, silentLogger);
    expect(epp.config.endpoints).toEqual(['10.0.0.1:8000', '10.0.0.2:8000']);
    answer = new Error('ENOTFOUND');
    await pool.refresh(epp, silentLogger);
    expect(epp.config.endpoints).toEqual(['10.0.0.1:8000', '10.0.0.2:8000']);
    expect(epp.sets).toBe(2);
  });
});
