import type { DatabaseKind } from './test-database.js';

const EVERY_DATABASE: readonly DatabaseKind[] = ['mariadb', 'postgres', 'sqlite'];

/**
 * The databases the example's suites run on: all of them, or those TEST_DATABASES names
 * (comma-separated), as CI runs those suites on MariaDB alone on the Nodes other than 24. A name
 * it does not know fails the run rather than narrowing it to nothing.
 */
export const CHOSEN_DATABASES: readonly DatabaseKind[] = parsed(process.env.TEST_DATABASES);

function parsed(names: string | undefined): readonly DatabaseKind[] {
  if (!names) return EVERY_DATABASE;
  const listed = names.split(',').map((name) => name.trim());
  const unknown = listed.filter((name) => !(EVERY_DATABASE as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`TEST_DATABASES names ${unknown.join(', ')}: choose among ${EVERY_DATABASE.join(', ')}`);
  return EVERY_DATABASE.filter((database) => listed.includes(database));
}

/** The rows of a suite's matrix whose database is chosen. */
export function onChosenDatabases<Row extends readonly [DatabaseKind, ...unknown[]]>(rows: readonly Row[]): Row[] {
  return rows.filter(([database]) => CHOSEN_DATABASES.includes(database));
}

/** `preferred` if it is chosen, else the first chosen database: for a rule a suite proves on one database. */
export function chosenOr(preferred: DatabaseKind): DatabaseKind {
  return CHOSEN_DATABASES.includes(preferred) ? preferred : CHOSEN_DATABASES[0];
}
