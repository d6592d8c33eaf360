import { describe, expect, it } from 'vitest';
import { StreamSleeper } from './stream-sleeper.ts';

describe('StreamSleeper', () => {
  it('resolves true after the time', async () => {
    expect(await new StreamSleeper().sleep(1)).toBe(true);
  });
  it('cancel wakes a sleeper at once with false, and later sleeps do not wait', async () => {
    const s = new StreamSleeper();
    const long = s.sleep(60_000);
    s.cancel();
    expect(await long).toBe(false);
    expect(await s.sleep(60_000)).toBe(false);
  });
});
