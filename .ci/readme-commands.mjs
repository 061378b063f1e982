// Prints the two command lines of the README's first fenced block (start, then test), and fails
// unless there are exactly two: they are the newcomer's path, and CI runs them as written.
import { readFileSync } from 'node:fs';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const block = /^```[^\n]*\n([\s\S]*?)^```/m.exec(readme);
const lines = (block?.[1] ?? '').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
if (lines.length !== 2) {
  console.error(`README.md: the first fenced block must hold exactly two command lines (start, test); it holds ${lines.length}`);
  process.exit(1);
}
console.log(lines.join('\n'));
