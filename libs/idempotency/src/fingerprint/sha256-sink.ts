import { createHash, hash as sha256Once, type Hash } from 'node:crypto';

// Below this many characters the whole input is hashed in one native call; creating a Hash object
// costs more than hashing the few hundred bytes most fingerprints cover.
const ONE_SHOT_LIMIT = 64 * 1024;

/** SHA-256 of text and bytes fed piece by piece: one-shot for small inputs, streamed for large. */
export class Sha256Sink {
  private pending = '';
  private stream?: Hash;

  update(text: string): this {
    this.pending += text;
    if (this.pending.length > ONE_SHOT_LIMIT) this.flush();
    return this;
  }

  updateBytes(bytes: Buffer): this {
    this.flush().update(bytes);
    return this;
  }

  digest(): string {
    if (!this.stream) return sha256Once('sha256', this.pending, 'hex');
    return this.flush().digest('hex');
  }

  private flush(): Hash {
    this.stream ??= createHash('sha256');
    if (this.pending.length > 0) this.stream.update(this.pending, 'utf8');
    this.pending = '';
    return this.stream;
  }
}
