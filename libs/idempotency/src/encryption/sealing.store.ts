import type {
  AtomicClaimOutcome,
  AtomicUnit,
  Claim,
  ClaimRequest,
  CompletedRecord,
  FoundRecord,
  IdempotencyStore,
  StoredResponse,
} from '../store/idempotency-store.js';
import type { Keyring } from './keyring.js';
import { EnvelopeOpenError, openEnvelope, sealEnvelope } from './sealed-envelope.js';
import { DelegatingStore } from '../store/delegating.store.js';


/** What the wrapped store keeps in the headers column: the real headers are inside the sealed body. */
const SEALED_HEADERS: StoredResponse['headers'] = Object.freeze({});
const RECORD_LABEL = 'nestjs-idempotency/record/v1';

/**
 * Wraps any store so that what it keeps of a response is sealed (R26): headers and body travel
 * together in one AES-256-GCM envelope in the body column, and the headers column holds `{}`.
 * Records are opened as the wrapped store hands them back, so everything above this store
 * (the replay cache, the interceptor) sees the response as it was sent.
 *
 * Each envelope is bound to its record's account, key and status: bytes copied from one row to
 * another, or a status changed in place, fail to open rather than replay as someone else's answer.
 * A record that fails to open makes `claim` and `inspect` throw, which callers answer as a store
 * failure (503, R18): the handler does not run again and nothing is replayed.
 */
export class SealingStore extends DelegatingStore {
  constructor(
    store: IdempotencyStore,
    private readonly keyring: Keyring,
  ) {
    super(store);
  }

  protected override async claimThrough<T extends AtomicClaimOutcome>(
    request: ClaimRequest,
    claiming: () => Promise<T>,
  ): Promise<T | CompletedRecord> {
    const outcome = await claiming();
    return outcome.status === 'completed' ? this.opened(request.account, request.key, outcome) : outcome;
  }

  override async inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    const found = await this.store.inspect(account, key);
    return found?.status === 'completed' ? this.opened(account, key, found) : found;
  }

  override complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    return this.store.complete(claim, this.sealed(claim, response), ttlMs);
  }

  protected override commitWithin(unit: AtomicUnit, claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    return unit.commitWith(claim, this.sealed(claim, response), ttlMs);
  }






  private sealed(claim: Claim, response: StoredResponse): StoredResponse {
    const headers = Buffer.from(JSON.stringify(response.headers), 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(headers.length);
    const plaintext = Buffer.concat([length, headers, response.body]);
    const body = sealEnvelope(this.keyring.sealing, plaintext, recordContext(claim.account, claim.key, response.status));
    return { status: response.status, headers: SEALED_HEADERS, body };
  }

  private opened(account: string, key: string, record: CompletedRecord): CompletedRecord {
    const { status } = record.response;
    let plaintext: Buffer;
    try {
      plaintext = openEnvelope(this.keyring, record.response.body, recordContext(account, key, status));
    } catch (error) {
      if (!(error instanceof EnvelopeOpenError)) throw error;
      throw new EnvelopeOpenError(
        `the stored response of key ${key} (account ${JSON.stringify(account)}) cannot be opened: ${error.message}. ` +
          'It is neither replayed nor run again until it expires.',
        error.keyId,
      );
    }
    const headersEnd = 4 + plaintext.readUInt32BE(0);
    const headers = JSON.parse(plaintext.subarray(4, headersEnd).toString('utf8')) as StoredResponse['headers'];
    return { ...record, response: { status, headers, body: plaintext.subarray(headersEnd) } };
  }
}

/** The associated data of a record's envelope: what the sealed bytes must not be moved away from. */
function recordContext(account: string, key: string, status: number): Buffer {
  // Length-prefixed, so that no two different (account, key, status) frame into the same bytes.
  const parts: Buffer[] = [];
  for (const field of [RECORD_LABEL, account, key, String(status)]) {
    const bytes = Buffer.from(field, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}
