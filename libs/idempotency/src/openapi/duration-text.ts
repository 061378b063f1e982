/** A duration in ms as a reader of the API docs wants it: `3 s`, `24 h`, `1.5 min`, `250 ms`. */
export function durationText(ms: number): string {
  const units: ReadonlyArray<readonly [number, string]> = [
    [24 * 60 * 60 * 1000, 'd'],
    [60 * 60 * 1000, 'h'],
    [60 * 1000, 'min'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) {
    // A day is said in hours up to two of them: "24 h" reads better than "1 d".
    if (ms >= size && !(unit === 'd' && ms < 2 * size)) return `${round(ms / size)} ${unit}`;
  }
  return `${ms} ms`;
}

function round(value: number): string {
  return String(Math.round(value * 10) / 10);
}
