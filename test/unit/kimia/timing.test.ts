import { describe, expect, it } from 'vitest';
import { mark, timingLine, timingMarks } from '../../../src/kimia/timing.js';

describe('kimia phase timing', () => {
  it('prints each mark in order, in whole milliseconds since the process started', () => {
    expect(timingLine([{ name: 'main', at: 41.6 }, { name: 'bud', at: 120.2 }], { totalMs: 88.4, beforeBudMs: 61.2 })).toBe("main 42 · bud 120; kimia's own cpu 88 ms (61 ms before buildah)");
    const before = timingMarks().length;
    mark('a');
    mark('b');
    const taken = timingMarks().slice(before);
    expect(taken.map((m) => m.name)).toEqual(['a', 'b']);
    expect(taken[1]!.at).toBeGreaterThanOrEqual(taken[0]!.at);
  });
});
