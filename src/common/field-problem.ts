/** One entry of `validation_failed`'s details: the field (a dotted path) and what is wrong with it. */
export interface FieldProblem {
  readonly field: string;
  readonly problems: readonly string[];
}

/** `a.b.0`: where a member sits in a body, its name made printable if it is not well-formed Unicode. */
export function memberPath(parent: string, name: string): string {
  const printable = isWellFormed(name) ? name : (name as string & { toWellFormed(): string }).toWellFormed();
  return parent === '' ? printable : `${parent}.${printable}`;
}

// String.prototype.isWellFormed and toWellFormed are ES2024 (Node 20 has them); the project compiles against ES2023.
export function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}
