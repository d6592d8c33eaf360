import { spawnSync } from 'node:child_process';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FdLogDestination, FLUSH_MS, MAX_PENDING_BYTES, PIPE_BUF, type FdWriter } from './fd-log-destination.ts';

/** A fake fd: records each write; `accept` says how many bytes of the next writes it takes. */
function fakeFd(): { writes: string[]; writer: FdWriter; accept: number[]; gone: boolean } {
  const f = {
    writes: [] as string[],
    accept: [] as number[],
    gone: false,
    writer: ((_fd: number, data: Buffer): number => {
      if (f.gone) return -1;
      const n = Math.min(data.length, f.accept.length > 0 ? (f.accept.shift() as number) : data.length);
      if (n > 0) f.writes.push(data.subarray(0, n).toString());
      return n;
    }) as FdWriter,
  };
  return f;
}

const line = (i: number, pad = 0): string => `${JSON.stringify({ level: 30, i, pad: 'x'.repeat(pad) })}\n`;

describe('FdLogDestination', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('holds info lines up to FLUSH_MS, then writes them in one write', () => {
    const fd = fakeFd();
    const d = new FdLogDestination(9, fd.writer);
    d.write(line(1));
    d.write(line(2));
    vi.advanceTimersByTime(FLUSH_MS - 1);
    expect(fd.writes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fd.writes).toEqual([line(1) + line(2)]);
  });

  it('writes a warning, and every line before it, at the end of the turn', () => {
    const fd = fakeFd();
    const d = new FdLogDestination(9, fd.writer);
    d.write(line(1));
    d.lastLevel = 40;
    d.write('{"level":40}\n');
    expect(fd.writes).toEqual([]);
    vi.advanceTimersToNextTimer();
    expect(fd.writes).toEqual([`${line(1)}{"level":40}\n`]);
    // The info timer was cancelled with the flush: nothing more is written.
    vi.advanceTimersByTime(FLUSH_MS * 2);
    expect(fd.writes).toHaveLength(1);
  });

  it('gets the level from pino (metadata stream), so a pino warning is not held', () => {
    const fd = fakeFd();
    const d = new FdLogDestination(9, fd.writer);
    const log = pino({ base: null, timestamp: false }, d);
    log.info('a');
    vi.advanceTimersByTime(FLUSH_MS - 1);
    expect(fd.writes).toEqual([]);
    log.warn('b');
    vi.advanceTimersToNextTimer(); // the end of the turn (an immediate), before the info timer
    expect(fd.writes).toHaveLength(1);
    expect(fd.writes[0]).toMatch(/"msg":"a"[\s\S]*"msg":"b"/);
  });

  it('cuts writes at PIPE_BUF bytes on line ends, a longer line alone', () => {
    const fd = fakeFd();
    const d = new FdLogDestination(9, fd.writer);
    const lines = Array.from({ length: 40 }, (_, i) => line(i, 200));
    const long = line(99, PIPE_BUF * 2);
    for (const l of [...lines, long, line(100)]) d.write(l);
    d.flushSync();
    expect(fd.writes.join('')).toBe([...lines, long, line(100)].join(''));
    for (const w of fd.writes) {
      expect(w.endsWith('\n')).toBe(true);
      if (w !== long) expect(Buffer.byteLength(w)).toBeLessThanOrEqual(PIPE_BUF);
    }
    expect(fd.writes).toContain(long);
  });

  it('a full fd (EAGAIN): keeps the rest, retries, loses and repeats nothing', () => {
    const fd = fakeFd();
    const d = new FdLogDestination(9, fd.writer);
    fd.accept.push(10, 0);
    d.write(line(1));
    d.write(line(2));
    vi.advanceTimersByTime(FLUSH_MS);
    expect(fd.writes.join('')).toBe(line(1).slice(0, 10));
    d.write(line(3));
    vi.advanceTimersByTime(10); // first retry: the fd takes nothing
    expect(fd.writes.join('')).toBe(line(1).slice(0, 10));
    vi.advanceTimersByTime(10); // second: everything
    expect(fd.writes.join('')).toBe(line(1) + line(2) + line(3));
  });

  it('a reader that is gone (EPIPE): the lines are dropped and writing stops, without a throw', () => {
    const fd = fakeFd();
    const d = new FdLogDestination(9, fd.writer);
    fd.gone = true;
    d.write(line(1));
    expect(() => d.flushSync()).not.toThrow();
    fd.gone = false;
    d.write(line(2));
    d.flushSync();
    expect(fd.writes).toEqual([]);
  });

  it('beyond MAX_PENDING_BYTES lines are counted, and the count is logged once the fd takes bytes', () => {
    const fd = fakeFd();
    const d = new FdLogDestination(9, fd.writer);
    fd.accept.push(0);
    d.write(line(0));
    vi.advanceTimersByTime(FLUSH_MS); // blocked: the fd took nothing
    const big = line(1, 1024 * 1024);
    let held = 0;
    while (held + Buffer.byteLength(big) <= MAX_PENDING_BYTES - 100) {
      d.write(big);
      held += Buffer.byteLength(big);
    }
    d.write(big);
    d.write(big);
    d.flushSync();
    // The line already in flight first, then the count, then the lines held.
    const out = fd.writes.join('').split('\n');
    expect(out[0]).toBe(line(0).trim());
    expect(JSON.parse(out[1] as string)).toMatchObject({ level: 40, event: 'log_lines_dropped', count: 2 });
    expect(out.filter((l) => l.includes('log_lines_dropped'))).toHaveLength(1);
    expect(out.length - 3).toBe(held / Buffer.byteLength(big));
  });
});

describe('stderrLogDestination in a process', () => {
  it('writes what is pending when the process exits, also after an uncaught exception', () => {
    const script = `
      import { createLogger } from './core/logger.ts';
      const log = createLogger('t');
      log.info('first');
      setTimeout(() => { log.info('second'); throw new Error('boom'); }, 5);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('"msg":"first"');
    expect(r.stderr).toContain('"msg":"second"');
    expect(r.stderr).toContain('boom');
  });
});
