import { isWellFormed, memberPath, type FieldProblem } from './field-problem.js';

/** How deep a body may nest: the body itself is level 1. Far beyond any DTO's, far below a stack's. */
export const MAX_BODY_DEPTH = 32;

/** Enough to show a client its mistakes without answering a huge body with a huge error. */
const MAX_PROBLEMS = 10;

/**
 * What makes a body unfit for the DTO pipeline, found in one walk that keeps its own stack (so no
 * body is too deep for it), before class-transformer recurses into it: nesting beyond
 * `MAX_BODY_DEPTH`, and strings, values or member names, that a database cannot store as sent. A
 * lone surrogate is not Unicode (MariaDB, PostgreSQL and SQLite store U+FFFD instead, so the
 * stored record and the answer would differ) and PostgreSQL refuses U+0000 in text.
 */
export function bodyProblems(body: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const pending: Array<{ value: unknown; path: string; depth: number }> = [{ value: body, path: '', depth: 1 }];
  while (pending.length > 0 && problems.length < MAX_PROBLEMS) {
    const { value, path, depth } = pending.pop()!;
    if (typeof value === 'string') {
      const problem = stringProblem(value);
      if (problem) problems.push({ field: path, problems: [`must ${problem}`] });
      continue;
    }
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) continue;
    if (depth > MAX_BODY_DEPTH) {
      problems.push({ field: path, problems: [`nested deeper than ${MAX_BODY_DEPTH} levels`] });
      continue;
    }
    const isArray = Array.isArray(value);
    // Reversed, so that members are reported in the order they were sent.
    for (const [name, member] of Object.entries(value).reverse()) {
      const namePath = memberPath(path, name);
      const nameProblem = isArray ? undefined : stringProblem(name);
      if (nameProblem) problems.push({ field: namePath, problems: [`name must ${nameProblem}`] });
      pending.push({ value: member, path: namePath, depth: depth + 1 });
    }
  }
  return problems;
}

function stringProblem(text: string): string | undefined {
  if (!isWellFormed(text)) return 'be well-formed Unicode (it holds a lone surrogate)';
  if (text.includes('\u0000')) return 'not contain U+0000';
  return undefined;
}
