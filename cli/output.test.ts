import { describe, expect, it } from 'vitest';
import { colorLevel } from './output.ts';

describe('colorLevel', () => {
  it('NO_COLOR (set, not empty) and --no-color turn colours off; an empty NO_COLOR does not', () => {
    expect(colorLevel({ NO_COLOR: '1' }, [])).toBe(0);
    expect(colorLevel({ NO_COLOR: 'true', FORCE_COLOR: '3' }, [])).toBe(0);
    expect(colorLevel({}, ['node', 'eppkit', 'list', '--no-color'])).toBe(0);
    expect(colorLevel({}, ['node', 'eppkit', 'list', '--color=false'])).toBe(0);
    // Without those, chalk's own detection decides (a level, whatever this terminal supports).
    expect([0, 1, 2, 3]).toContain(colorLevel({ NO_COLOR: '' }, []));
  });
});
