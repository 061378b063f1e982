import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

/** The Node.js major release from which better-sqlite3 13 runs, and 12 no longer may. */
const FIRST_NODE_OF_BETTER_SQLITE3_13 = 22;

/**
 * better-sqlite3 for the Node.js that runs this process, handed to TypeORM as its `driver`.
 *
 * Version 12 aborts Node 24.19 and later (SIGABRT, `Assertion failed: (env) != nullptr`) when the
 * garbage collector frees a statement outside JavaScript, as its idle collections do: its
 * destructor asks Node for an environment that does not exist there. Version 13 does not, and
 * loads on every Node from 22 without a build, but needs Node 22 and crashes Node 20. TypeORM 1.1
 * still asks for 12 as its peer, so 13 is installed under another name (`better-sqlite3-13`) and
 * passed in, and 12 stays installed, optionally, for Node 20.
 */
export function betterSqlite3ForThisNode(): unknown {
  const name = betterSqlite3PackageForThisNode();
  try {
    return requireFromHere(name);
  } catch (error) {
    throw new Error(`SQLite on Node ${process.versions.node} needs the package ${name}, which did not load: run npm ci again`, {
      cause: error,
    });
  }
}

/** The name under which the better-sqlite3 this Node loads is installed. */
export function betterSqlite3PackageForThisNode(): 'better-sqlite3' | 'better-sqlite3-13' {
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  return nodeMajor >= FIRST_NODE_OF_BETTER_SQLITE3_13 ? 'better-sqlite3-13' : 'better-sqlite3';
}
