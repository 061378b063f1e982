import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import mysql from 'mysql2/promise';

// scripts/clusters/galera.sh: three nodes on one machine, root over TCP without a password.
const SCRIPT = join(process.cwd(), 'scripts/clusters/galera.sh');
export const GALERA_NODES = [1, 2, 3] as const;
export type GaleraNode = (typeof GALERA_NODES)[number];

const portOf = (node: GaleraNode): number => 3310 + node;

function galera(...args: string[]): void {
  // Starting from nothing takes about 15 s; a node's state transfer after a kill can take longer.
  execFileSync('bash', [SCRIPT, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 240_000 });
}

/** Brings the cluster up (at once if it is up already) with every node Synced. */
export const startGalera = (): void => galera('start');
/** kill -9 of one node's server, as a crashed machine. */
export const killGaleraNode = (node: GaleraNode): void => galera('kill', String(node));
/** Restarts one node and waits until it has rejoined the cluster and is Synced. */
export const restartGaleraNode = (node: GaleraNode): void => galera('start-node', String(node));

/** The URL of `database` through `node`, as an app instance's DATABASE_URL. */
export function galeraUrl(node: GaleraNode, database: string): string {
  return `mysql://root@127.0.0.1:${portOf(node)}/${database}`;
}

async function onNode<T>(node: GaleraNode, work: (connection: mysql.Connection) => Promise<T>): Promise<T> {
  const connection = await mysql.createConnection({ host: '127.0.0.1', port: portOf(node), user: 'root' });
  try {
    return await work(connection);
  } finally {
    await connection.end();
  }
}

/** A fresh, empty database on the cluster (DDL replicates to every node). */
export async function createGaleraDatabase(name: string): Promise<{ name: string; drop(): Promise<void> }> {
  await onNode(1, async (connection) => {
    await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await connection.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  });
  return { name, drop: () => onNode(1, async (connection) => void (await connection.query(`DROP DATABASE IF EXISTS \`${name}\``))) };
}

/** Rows read through `node` once it has applied every commit the cluster made before the read. */
export function galeraRows<T>(node: GaleraNode, sql: string, params: unknown[] = []): Promise<T[]> {
  return onNode(node, async (connection) => {
    await connection.query('SET SESSION wsrep_sync_wait = 15');
    return (await connection.query(sql, params))[0] as T[];
  });
}

/**
 * Transactions each node rolled back for another node's commit since it started: certification
 * failures (at commit) and brute-force aborts (mid-transaction). A down node counts none.
 */
export async function certificationLosses(): Promise<number> {
  let total = 0;
  for (const node of GALERA_NODES) {
    const rows = await galeraRows<{ Variable_name: string; Value: string }>(
      node,
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')",
    ).catch(() => []);
    total += rows.reduce((sum, row) => sum + Number(row.Value), 0);
  }
  return total;
}
