import { describe, expect, it } from 'vitest';
import { isoAt } from './stream-journal.ts';

describe('isoAt', () => {
  it('is the text of Date#toISOString, for times close together and far apart', () => {
    const times = [0, 1, 999, 1000, 1_764_496_931_000, 1_764_496_931_009, 1_764_496_931_099, 1_764_496_931_999, 1_764_496_932_000, 253_402_300_799_999, 253_402_300_800_000, -1, -1000, -62_167_219_200_000, 1.5, 8.64e15];
    // Consecutive milliseconds across second, minute, hour, day and year boundaries.
    for (const at of [Date.UTC(2026, 10, 30, 23, 59, 59, 990), Date.UTC(2026, 11, 31, 23, 59, 59, 995)]) for (let i = 0; i < 20; i++) times.push(at + i);
    for (let i = 0; i < 2000; i++) times.push(Math.floor(Math.random() * 2.5e14));
    for (const t of times) expect({ t, text: isoAt(t) }).toEqual({ t, text: new Date(t).toISOString() });
  });

  it('gives the same text twice in a row for the same time', () => {
    const a = isoAt(1_764_496_931_123);
    expect(isoAt(1_764_496_931_123)).toBe(a);
    expect(isoAt(1_764_496_931_124)).toBe('2025-11-30T10:02:11.124Z');
  });
});
