/**
 * Galera applies other nodes' commits asynchronously: a statement could read a record that another
 * node has already completed or claimed as it was before. `wsrep_sync_wait = 15` makes each of the
 * store's statements first wait until this node has caught up with the cluster (causal reads and
 * writes), set per statement so that the application's own sessions keep their settings.
 */
export const GALERA_STATEMENT_SETTINGS = 'wsrep_sync_wait = 15';

/** `statement` run with `settings` (MariaDB's `SET STATEMENT ... FOR`), or as is when there are none. */
export function withSettings(settings: readonly string[], statement: string): string {
  return settings.length === 0 ? statement : `SET STATEMENT ${settings.join(', ')} FOR ${statement}`;
}
