import { describe, expect, it } from 'vitest';
import { Journal, type JournalEntry } from './journal.ts';

const entry = (id: number): JournalEntry => ({ id, startedAt: '', peer: '', bodyMode: { request: '', response: '' }, phases: [], metadataContext: {}, answers: [], problems: [] });

describe('journal', () => {
  it('keeps the newest maxEntries, oldest first', () => {
    const j = new Journal(4);
    for (let i = 1; i <= 11; i++) j.open(entry(i));
    expect(j.entries.map((e) => e.id)).toEqual([8, 9, 10, 11]);
  });

  it('waitFor resolves once n entries have ended, and rejects on timeout or close', async () => {
    const j = new Journal(10);
    const a = entry(1);
    const b = entry(2);
    j.open(a);
    j.open(b);
    const waiting = j.waitFor(2, 2000);
    a.end = { how: 'completed' };
    j.ended();
    b.end = { how: 'reset' };
    j.ended();
    expect((await waiting).map((e) => e.id)).toEqual([1, 2]);
    await expect(j.waitFor(3, 20)).rejects.toThrow(/2 ended entries, waited for 3/);
    const pending = j.waitFor(5, 2000);
    j.close();
    await expect(pending).rejects.toThrow(/stopped/);
  });
});
