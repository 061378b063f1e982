import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';

const run = promisify(execFile);
const DRIVER = fileURLToPath(new URL('../dist/src/database/sqlite-driver.js', import.meta.url));
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

// A process of its own, as the example runs: better-sqlite3 12 aborts Node 24.19+ (SIGABRT,
// "Assertion failed: (env) != nullptr") as soon as the garbage collector frees one of its statements
// outside JavaScript, which thousands of prepared statements make happen within a second.
const FREE_MANY_STATEMENTS = `
import { createRequire } from 'node:module';
import { betterSqlite3ForThisNode, betterSqlite3PackageForThisNode } from ${JSON.stringify(DRIVER)};
const Database = betterSqlite3ForThisNode();
const db = new Database(':memory:');
db.exec('CREATE TABLE t (n INTEGER)');
let garbage = [];
for (let n = 0; n < 20000; n++) {
  db.prepare('INSERT INTO t VALUES (?)').run(n);
  garbage.push('x'.repeat(100) + n);
}
garbage = null;
await new Promise((resolve) => setTimeout(resolve, 500));
const { version } = createRequire(${JSON.stringify(DRIVER)})(betterSqlite3PackageForThisNode() + '/package.json');
console.log(JSON.stringify({ major: Number(version.split('.')[0]), rows: db.prepare('SELECT COUNT(*) AS c FROM t').get().c }));
`;

describe(`the example's SQLite driver on Node ${process.versions.node} (Node versions differ: native modules)`, () => {
  it(`is better-sqlite3 ${NODE_MAJOR >= 22 ? '13 (from Node 22)' : '12 (Node 20)'}, and the collector freeing 20000 of its statements leaves the process alive`, async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', FREE_MANY_STATEMENTS]);
    expect(JSON.parse(stdout)).toEqual({ major: NODE_MAJOR >= 22 ? 13 : 12, rows: 20000 });
  });
});
