// Token kinds on the tape.
export const PLAIN_STRING = 1;
export const ESCAPED_STRING = 2;
export const PLAIN_NUMBER = 3;
export const NUMBER = 4;
export const TRUE = 5;
export const FALSE = 6;
export const NULL = 7;
export const ARRAY = 8;
export const OBJECT = 9;
/**
 * Each token takes three slots: its kind, then for a string or number the offsets of its text
 * (start, end), for an array or object its count of items or members and the tape index past its
 * last token. A string is plain when JSON.stringify writes it back as sent; a number, when
 * Number::toString does.
 */
export const SLOTS = 3;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const BYTE_ORDER_MARK = 0xfeff;
// Integers of up to 21 digits are written by Number::toString as they are written in JSON.
const PLAIN_INTEGER_DIGITS = 21;
const LITERALS = [
  [TRUE, 'true'],
  [FALSE, 'false'],
  [NULL, 'null'],
] as const;
// What reading a value did.
const READ = 0;
const OPENED = 1;
const FAILED = 2;

/**
 * Reads and checks a whole JSON text into a tape of tokens (offsets into the text, no copies), in
 * `scratch` when it is large enough; undefined when the text is not one JSON value, as
 * `JSON.parse` would refuse it. It reads with an explicit stack, never recursion.
 */
export function readTape(text: string, scratch: Int32Array | undefined): Int32Array | undefined {
  const reader = new TapeReader(text, scratch);
  return reader.read() ? reader.tape : undefined;
}

class TapeReader {
  tape: Int32Array;
  private size = 0;
  private at: number;
  /** Tape indices of the arrays and objects being read, innermost last. */
  private readonly open: number[] = [];

  constructor(
    private readonly text: string,
    scratch: Int32Array | undefined,
  ) {
    // A token takes at least one character; JSON bodies average more than four characters a
    // token, so a large one rarely grows its tape.
    const tokens = Math.max(Math.min(text.length + 1, 1024), Math.ceil(text.length / 4));
    this.tape = scratch && scratch.length >= tokens * SLOTS ? scratch : new Int32Array(tokens * SLOTS);
    // Body parsers drop a leading byte order mark before JSON.parse; the data is the same.
    this.at = text.charCodeAt(0) === BYTE_ORDER_MARK ? 1 : 0;
  }

  read(): boolean {
    const { text, open } = this;
    this.skipWhitespace();
    for (;;) {
      const read = this.value();
      if (read === FAILED) return false;
      if (read === OPENED) continue;
      // Close every container this value completes, up to one that has more to read.
      for (;;) {
        this.skipWhitespace();
        if (open.length === 0) return this.at === text.length;
        const container = open[open.length - 1];
        const kind = this.tape[container];
        const next = text.charCodeAt(this.at++);
        this.tape[container + 1]++;
        if (next === 0x2c) {
          this.skipWhitespace();
          if (kind === OBJECT && !this.memberName()) return false;
          break;
        }
        if (next !== (kind === ARRAY ? 0x5d : 0x7d)) return false;
        this.tape[container + 2] = this.size;
        open.pop();
      }
    }
  }

  /** Reads one value, or opens an array or object and reads up to its first value (OPENED). */
  private value(): typeof READ | typeof OPENED | typeof FAILED {
    const { text } = this;
    const code = text.charCodeAt(this.at);
    if (code === QUOTE) return this.string() ? READ : FAILED;
    if (code === MINUS || isDigit(code)) return this.number() ? READ : FAILED;
    if (code === 0x7b || code === 0x5b) {
      const kind = code === 0x7b ? OBJECT : ARRAY;
      const container = this.push(kind, 0, 0);
      this.at++;
      this.skipWhitespace();
      if (text.charCodeAt(this.at) === (kind === ARRAY ? 0x5d : 0x7d)) {
        this.at++;
        this.tape[container + 2] = this.size;
        return READ;
      }
      this.open.push(container);
      return kind === ARRAY || this.memberName() ? OPENED : FAILED;
    }
    for (const [kind, word] of LITERALS) {
      if (text.startsWith(word, this.at)) {
        this.at += word.length;
        this.push(kind, 0, 0);
        return READ;
      }
    }
    return FAILED;
  }

  /** Reads `"name":` and leaves the reader at the member's value. */
  private memberName(): boolean {
    if (this.text.charCodeAt(this.at) !== QUOTE || !this.string()) return false;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.at) !== 0x3a) return false;
    this.at++;
    this.skipWhitespace();
    return true;
  }

  /**
   * A string is plain when JSON.stringify writes it back as sent: no escapes, no surrogates
   * (a lone one would be escaped), no control characters (which JSON refuses unescaped anyway).
   */
  private string(): boolean {
    const { text } = this;
    const start = this.at;
    let index = start + 1;
    let kind = PLAIN_STRING;
    for (;;) {
      const code = text.charCodeAt(index);
      if (code === QUOTE) break;
      if (code >= 0x20 && code !== BACKSLASH && (code < 0xd800 || code > 0xdfff)) {
        index++;
        continue;
      }
      kind = ESCAPED_STRING;
      if (code === BACKSLASH) {
        const escaped = escapeLength(text, index);
        if (escaped === 0) return false;
        index += escaped;
      } else if (code >= 0x20) {
        index++;
      } else {
        // A control character, or the end of the text (NaN).
        return false;
      }
    }
    this.at = index + 1;
    this.push(kind, start, this.at);
    return true;
  }

  private number(): boolean {
    const { text } = this;
    const start = this.at;
    let index = text.charCodeAt(start) === MINUS ? start + 1 : start;
    const integerStart = index;
    if (text.charCodeAt(index) === 0x30) index++;
    else if (isDigit(text.charCodeAt(index))) while (isDigit(text.charCodeAt(index))) index++;
    else return false;
    let plain = index - integerStart <= PLAIN_INTEGER_DIGITS && !(index - start === 2 && text.charCodeAt(start) === MINUS && text.charCodeAt(integerStart) === 0x30);
    if (text.charCodeAt(index) === 0x2e) {
      plain = false;
      const fractionStart = ++index;
      while (isDigit(text.charCodeAt(index))) index++;
      if (index === fractionStart) return false;
    }
    const exponentMark = text.charCodeAt(index);
    if (exponentMark === 0x65 || exponentMark === 0x45) {
      plain = false;
      index++;
      const sign = text.charCodeAt(index);
      if (sign === 0x2b || sign === MINUS) index++;
      const exponentStart = index;
      while (isDigit(text.charCodeAt(index))) index++;
      if (index === exponentStart) return false;
    }
    this.at = index;
    this.push(plain ? PLAIN_NUMBER : NUMBER, start, index);
    return true;
  }

  private push(kind: number, first: number, second: number): number {
    if (this.size + SLOTS > this.tape.length) {
      const grown = new Int32Array(this.tape.length * 2);
      grown.set(this.tape);
      this.tape = grown;
    }
    const index = this.size;
    this.tape[index] = kind;
    this.tape[index + 1] = first;
    this.tape[index + 2] = second;
    this.size += SLOTS;
    return index;
  }

  private skipWhitespace(): void {
    const { text } = this;
    let index = this.at;
    for (;;) {
      const code = text.charCodeAt(index);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) break;
      index++;
    }
    this.at = index;
  }
}

/** The length of the escape sequence at `index` (a backslash), or 0 when JSON does not allow it. */
function escapeLength(text: string, index: number): number {
  const code = text.charCodeAt(index + 1);
  // " \ / b f n r t
  if (code === QUOTE || code === BACKSLASH || code === 0x2f || code === 0x62 || code === 0x66 || code === 0x6e || code === 0x72 || code === 0x74) {
    return 2;
  }
  if (code !== 0x75) return 0;
  for (let offset = 2; offset < 6; offset++) if (!isHexDigit(text.charCodeAt(index + offset))) return 0;
  return 6;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isHexDigit(code: number): boolean {
  return isDigit(code) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}
