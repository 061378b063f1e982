import { canonicalJsonNumber } from './json-number.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const MINUS = 0x2d;
const BYTE_ORDER_MARK = 0xfeff;
// Integers of up to 21 digits are written by Number::toString as they are written in JSON.
const PLAIN_INTEGER_DIGITS = 21;

class ArrayFrame {
  readonly items: string[] = [];
}

class ObjectFrame {
  /** Decoded member names, in arrival order: what members are sorted by. */
  readonly names: string[] = [];
  /** `"name":value` of each member, canonical, in arrival order. */
  readonly members: string[] = [];
  /** The member whose value is being read: its decoded name and its canonical `"name":`. */
  name = '';
  label = '';
}

/**
 * The canonical JSON text (R7) of a JSON document given as text: object members sorted by UTF-16
 * code unit, a repeated member name resolved as `JSON.parse` does (the last one wins), strings
 * written as `JSON.stringify` writes them, no insignificant whitespace, and numbers compared
 * exactly as written (see {@link canonicalJsonNumber}), never through a double. For any document
 * whose numbers a double holds as written, this is the text the parsed value canonicalises to
 * (`canonicalJson(JSON.parse(text))`), so both routes to a fingerprint agree.
 *
 * It reads with an explicit stack, never recursion, so any nesting depth works. Returns undefined
 * when the text is not one JSON value, as `JSON.parse` would refuse it.
 */
export function canonicalJsonText(text: string): string | undefined {
  return new CanonicalReader(text).read();
}

class CanonicalReader {
  private at: number;
  private readonly stack: Array<ArrayFrame | ObjectFrame> = [];

  constructor(private readonly text: string) {
    // Body parsers drop a leading byte order mark before JSON.parse; the data is the same.
    this.at = text.charCodeAt(0) === BYTE_ORDER_MARK ? 1 : 0;
  }

  read(): string | undefined {
    try {
      return this.document();
    } catch {
      // JSON.parse refused an escaped string or name.
      return undefined;
    }
  }

  private document(): string | undefined {
    const { text, stack } = this;
    this.skipWhitespace();
    for (;;) {
      let value: string | undefined;
      const code = text.charCodeAt(this.at);
      if (code === OPEN_OBJECT) {
        this.at++;
        this.skipWhitespace();
        if (text.charCodeAt(this.at) === CLOSE_OBJECT) {
          this.at++;
          value = '{}';
        } else {
          const frame = new ObjectFrame();
          stack.push(frame);
          if (!this.memberName(frame)) return undefined;
          continue;
        }
      } else if (code === OPEN_ARRAY) {
        this.at++;
        this.skipWhitespace();
        if (text.charCodeAt(this.at) === CLOSE_ARRAY) {
          this.at++;
          value = '[]';
        } else {
          stack.push(new ArrayFrame());
          continue;
        }
      } else if (code === QUOTE) {
        value = this.string(false);
      } else if (code === MINUS || isDigit(code)) {
        value = this.number();
      } else {
        value = this.literal();
      }
      if (value === undefined) return undefined;

      // Close every container this value completes, up to one that has more to read.
      for (;;) {
        const top = stack[stack.length - 1];
        this.skipWhitespace();
        if (top === undefined) return this.at === text.length ? value : undefined;
        const next = text.charCodeAt(this.at++);
        if (top instanceof ArrayFrame) {
          top.items.push(value);
          if (next === COMMA) break;
          if (next !== CLOSE_ARRAY) return undefined;
          stack.pop();
          value = `[${top.items.join(',')}]`;
        } else {
          top.names.push(top.name);
          top.members.push(top.label + value);
          if (next === COMMA) {
            this.skipWhitespace();
            if (!this.memberName(top)) return undefined;
            break;
          }
          if (next !== CLOSE_OBJECT) return undefined;
          stack.pop();
          value = sortedObject(top);
        }
      }
      this.skipWhitespace();
    }
  }

  /** Reads `"name":` into the frame and leaves the reader at the member's value. */
  private memberName(frame: ObjectFrame): boolean {
    if (this.text.charCodeAt(this.at) !== QUOTE) return false;
    const label = this.string(true);
    if (label === undefined) return false;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.at) !== COLON) return false;
    this.at++;
    this.skipWhitespace();
    frame.label = `${label}:`;
    return true;
  }

  /**
   * A string at the reader, as JSON.stringify writes it. Without escapes, surrogates or control
   * characters, that is the text as sent; otherwise JSON.parse decodes it (`"\u0041"` is `"A"`)
   * and JSON.stringify writes it again. For a member name, `frame.name` gets the decoded name.
   */
  private string(isName: boolean): string | undefined {
    const { text } = this;
    const start = this.at;
    let index = start + 1;
    for (;;) {
      const code = text.charCodeAt(index);
      if (code === QUOTE) {
        this.at = index + 1;
        const written = text.slice(start, this.at);
        if (isName) (this.stack[this.stack.length - 1] as ObjectFrame).name = text.slice(start + 1, index);
        return written;
      }
      // Also the end of the text (NaN): the slow path refuses it.
      if (!(code >= 0x20 && code !== BACKSLASH && (code < 0xd800 || code > 0xdfff))) break;
      index++;
    }
    return this.escapedString(start, isName);
  }

  private escapedString(start: number, isName: boolean): string | undefined {
    const { text } = this;
    let index = start + 1;
    while (index < text.length) {
      const code = text.charCodeAt(index);
      if (code === QUOTE) break;
      index += code === BACKSLASH ? 2 : 1;
    }
    if (index >= text.length) return undefined;
    this.at = index + 1;
    const decoded = JSON.parse(text.slice(start, this.at)) as string;
    if (isName) (this.stack[this.stack.length - 1] as ObjectFrame).name = decoded;
    return JSON.stringify(decoded);
  }

  private number(): string | undefined {
    const { text } = this;
    const start = this.at;
    let index = text.charCodeAt(start) === MINUS ? start + 1 : start;
    const integerStart = index;
    if (text.charCodeAt(index) === 0x30) index++;
    else if (isDigit(text.charCodeAt(index))) while (isDigit(text.charCodeAt(index))) index++;
    else return undefined;
    const integerDigits = index - integerStart;
    let plain = true;
    if (text.charCodeAt(index) === 0x2e) {
      plain = false;
      const fractionStart = ++index;
      while (isDigit(text.charCodeAt(index))) index++;
      if (index === fractionStart) return undefined;
    }
    const exponentMark = text.charCodeAt(index);
    if (exponentMark === 0x65 || exponentMark === 0x45) {
      plain = false;
      index++;
      const sign = text.charCodeAt(index);
      if (sign === 0x2b || sign === MINUS) index++;
      const exponentStart = index;
      while (isDigit(text.charCodeAt(index))) index++;
      if (index === exponentStart) return undefined;
    }
    this.at = index;
    const literal = text.slice(start, index);
    if (plain && integerDigits <= PLAIN_INTEGER_DIGITS) return literal === '-0' ? '0' : literal;
    return canonicalJsonNumber(literal);
  }

  private literal(): string | undefined {
    for (const word of ['true', 'false', 'null']) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return word;
      }
    }
    return undefined;
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

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** `{...}` with members sorted by name (code units, as `Array.prototype.sort`), the last of equal names kept. */
function sortedObject({ names, members }: ObjectFrame): string {
  const count = names.length;
  if (count === 1) return `{${members[0]}}`;
  let ordered = true;
  for (let index = 1; index < count && ordered; index++) ordered = names[index - 1] < names[index];
  if (ordered) return `{${members.join(',')}}`;
  // A stable sort keeps equal names in arrival order: the last of each run is the one JSON.parse keeps.
  const order = Array.from({ length: count }, (_, index) => index).sort((a, b) =>
    names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : a - b,
  );
  let written = '{';
  for (let position = 0; position < count; position++) {
    const index = order[position];
    const next = order[position + 1];
    if (next !== undefined && names[next] === names[index]) continue;
    written += written.length === 1 ? members[index] : `,${members[index]}`;
  }
  return `${written}}`;
}
