import { describe, expect, it } from '@jest/globals';
import { durationText } from './duration-text.js';

describe('durationText', () => {
  it.each([
    [250, '250 ms'],
    [3000, '3 s'],
    [1500, '1.5 s'],
    [90_000, '1.5 min'],
    [60 * 60 * 1000, '1 h'],
    [24 * 60 * 60 * 1000, '24 h'],
    [7 * 24 * 60 * 60 * 1000, '7 d'],
  ])('says %i ms as "%s", as the OpenAPI descriptions quote the route options (R25)', (ms, text) => {
    expect(durationText(ms)).toBe(text);
  });
});
