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
    j.ended(a);
    b.end = { how: 'reset' };
    j.ended(b);
    expect((await waiting).map((e) => e.id)).toEqual([1, 2]);
    await expect(j.waitFor(3, 20)).rejects.toThrow(/2 ended entries, waited for 3/);
    const pending = j.waitFor(5, 2000);
    j.close();
    await expect(pending).rejects.toThrow(/stopped/);
  });

  it('counts only held entries: trimmed or cleared ones do not satisfy a waiter', async () => {
    const j = new Journal(2);
    const es = [1, 2, 3, 4].map(entry);
    for (const e of es) j.open(e);
    // entry 1 and 2 are trimmed once the journal is read
    expect(j.entries.map((e) => e.id)).toEqual([3, 4]);
    es[0]!.end = { how: 'completed' };
    j.ended(es[0]!);
    await expect(j.waitFor(1, 20)).rejects.toThrow(/0 ended entries/);
    es[2]!.end = { how: 'completed' };
    j.ended(es[2]!);
    expect((await j.waitFor(1, 100)).map((e) => e.id)).toEqual([3]);
    j.clear();
    await expect(j.waitFor(1, 20)).rejects.toThrow(/0 ended entries/);
  });
});
