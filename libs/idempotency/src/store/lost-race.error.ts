/**
 * An atomic transaction that another transaction beat to its key at commit, or that the database
 * aborted for it mid-run (a Galera certification conflict, a deadlock): nothing of it was
 * committed, and the winner's record is the answer.
 */
export class TransactionLostRaceError extends Error {
  constructor(cause: unknown) {
    super('the atomic transaction lost its key to a concurrent transaction and was rolled back', { cause });
    this.name = 'TransactionLostRaceError';
  }
}
