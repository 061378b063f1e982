import { canonicalJsonNumber } from './json-number.js';

// Token kinds on the tape.
const PLAIN_STRING = 1;
const ESCAPED_STRING = 2;
const PLAIN_NUMBER = 3;
const NUMBER = 4;
const TRUE = 5;
const FALSE = 6;
const NULL = 7;
const ARRAY = 8;
const OBJECT = 9;
/**
 * Each token takes three slots: its kind, then for a string or number the offsets of its text
 * (start, end), for an array or object its count of items or members and the tape index past its
 * last token.
 */
const SLOTS = 3;

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
const LITERAL_TEXT: Record<number, string> = { [TRUE]: 'true', [FALSE]: 'false', [NULL]: 'null' };
// What reading a value did.
const READ = 0;
const OPENED = 1;
const FAILED = 2;

/**
 * Writes the canonical JSON text (R7) of a JSON document given as text into `sink`, piece by
 * piece: object members sorted by UTF-16 code unit, a repeated member name resolved as
 * `JSON.parse` does (the last one wins), strings written as `JSON.stringify` writes them (so
 * `"\u0041"` is `"A"`), no insignificant whitespace, and numbers compared exactly as written
 * (see {@link canonicalJsonNumber}), never through a double. For a document whose numbers a double
 * holds as written, this is exactly the text its parsed value canonicalises to
 * (`canonicalJson(JSON.parse(text))`), so both routes to a fingerprint agree.
 *
 * The whole text is checked first, so nothing is written for a text that is not one JSON value
 * (as `JSON.parse` would refuse it): then it returns false. It reads into a flat tape of offsets
 * and writes from it, with explicit stacks, never recursion, so any nesting depth works; the
 * pieces it writes are slices of the text, so a large body makes little garbage.
 */
export function writeCanonicalJsonText(text: string, sink: (piece: string) => void): boolean {
  // A sink that canonicalises another text while this one is written gets a tape of its own.
  const borrowing = !scratchInUse;
  scratchInUse = true;
  try {
    const tape = readTape(text, borrowing ? scratchTape : undefined);
    if (!tape) return false;
    writeTape(text, tape, sink);
    return true;
  } finally {
    if (borrowing) scratchInUse = false;
  }
}

// Allocating a typed array costs more than canonicalising a small body: the tapes of bodies of
// up to 4096 tokens are written here, one at a time (canonicalising is synchronous).
const scratchTape = new Int32Array(4096 * SLOTS);
let scratchInUse = false;

/** The canonical JSON text of a JSON document, or undefined when the text is not one JSON value. */
export function canonicalJsonText(text: string): string | undefined {
  let written = '';
  return writeCanonicalJsonText(text, (piece) => (written += piece)) ? written : undefined;
}

/** Reads and checks the whole text into a tape of tokens; undefined when it is not one JSON value. */
function readTape(text: string, scratch: Int32Array | undefined): Int32Array | undefined {
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

interface ArrayCursor {
  readonly kind: typeof ARRAY;
  next: number;
  remaining: number;
  started: boolean;
}

interface ObjectCursor {
  readonly kind: typeof OBJECT;
  /** Tape indices of the names of the members to write, in order: sorted, the last of equal names kept. */
  readonly members: number[];
  /** Their decoded names. */
  readonly names: string[];
  position: number;
}

/** Writes the canonical text of the tape's one value, with an explicit stack of open containers. */
function writeTape(text: string, tape: Int32Array, sink: (piece: string) => void): void {
  const stack: Array<ArrayCursor | ObjectCursor> = [];
  const open = (index: number): void => {
    const kind = tape[index];
    if (kind === PLAIN_STRING || kind === PLAIN_NUMBER) {
      sink(text.slice(tape[index + 1], tape[index + 2]));
    } else if (kind === ARRAY) {
      if (tape[index + 1] === 0) return sink('[]');
      sink('[');
      stack.push({ kind: ARRAY, next: index + SLOTS, remaining: tape[index + 1], started: false });
    } else if (kind === OBJECT) {
      if (tape[index + 1] === 0) return sink('{}');
      sink('{');
      stack.push(objectCursor(text, tape, index));
    } else if (kind === ESCAPED_STRING) {
      sink(JSON.stringify(decodedString(text, tape, index)));
    } else if (kind === NUMBER) {
      sink(canonicalJsonNumber(text.slice(tape[index + 1], tape[index + 2])));
    } else {
      sink(LITERAL_TEXT[kind]);
    }
  };
  open(0);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.kind === ARRAY) {
      if (top.remaining === 0) {
        sink(']');
        stack.pop();
        continue;
      }
      if (top.started) sink(',');
      top.started = true;
      const item = top.next;
      top.next = after(tape, item);
      top.remaining--;
      open(item);
      continue;
    }
    if (top.position === top.members.length) {
      sink('}');
      stack.pop();
      continue;
    }
    const position = top.position++;
    sink(memberLabel(text, tape, top, position));
    open(top.members[position] + SLOTS);
  }
}

/** The tape index just past the value at `index`. */
function after(tape: Int32Array, index: number): number {
  const kind = tape[index];
  return kind === ARRAY || kind === OBJECT ? tape[index + 2] : index + SLOTS;
}

function decodedString(text: string, tape: Int32Array, index: number): string {
  const source = text.slice(tape[index + 1], tape[index + 2]);
  return tape[index] === PLAIN_STRING ? source.slice(1, -1) : (JSON.parse(source) as string);
}

/** The members of the object at `index`, sorted by name (code units, as `Array.prototype.sort`), repeated names resolved. */
function objectCursor(text: string, tape: Int32Array, index: number): ObjectCursor {
  const count = tape[index + 1];
  const names = new Array<string>(count);
  const members = new Array<number>(count);
  let member = index + SLOTS;
  let ordered = true;
  for (let position = 0; position < count; position++) {
    const name = decodedString(text, tape, member);
    if (ordered && position > 0) ordered = names[position - 1] < name;
    names[position] = name;
    members[position] = member;
    member = after(tape, member + SLOTS);
  }
  if (!ordered) {
    sortStably(names, members);
    dropOverridden(names, members);
  }
  return { kind: OBJECT, members, names, position: 0 };
}

// Below this many members, insertion sort: no allocation, and fast on the few members most objects have.
const INSERTION_SORT_MAX = 24;

/** Sorts members by name, keeping equal names in arrival order. */
function sortStably(names: string[], members: number[]): void {
  const count = names.length;
  if (count <= INSERTION_SORT_MAX) {
    for (let position = 1; position < count; position++) {
      const name = names[position];
      const member = members[position];
      let slot = position;
      while (slot > 0 && names[slot - 1] > name) {
        names[slot] = names[slot - 1];
        members[slot] = members[slot - 1];
        slot--;
      }
      names[slot] = name;
      members[slot] = member;
    }
    return;
  }
  const order = names.map((_, position) => position).sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : a - b));
  const sortedNames = order.map((position) => names[position]);
  const sortedMembers = order.map((position) => members[position]);
  for (let position = 0; position < count; position++) {
    names[position] = sortedNames[position];
    members[position] = sortedMembers[position];
  }
}

/** Of sorted members with one name, keeps the last, as JSON.parse does. */
function dropOverridden(names: string[], members: number[]): void {
  let kept = 0;
  for (let position = 0; position < names.length; position++) {
    if (position + 1 < names.length && names[position + 1] === names[position]) continue;
    names[kept] = names[position];
    members[kept] = members[position];
    kept++;
  }
  names.length = kept;
  members.length = kept;
}

/** `"name":`, with the comma before it from the second member on. */
function memberLabel(text: string, tape: Int32Array, cursor: ObjectCursor, position: number): string {
  const member = cursor.members[position];
  const comma = position === 0 ? '' : ',';
  if (tape[member] !== PLAIN_STRING) return `${comma}${JSON.stringify(cursor.names[position])}:`;
  const start = tape[member + 1];
  const end = tape[member + 2];
  // In compact JSON the colon follows the name: one slice holds both.
  if (text.charCodeAt(end) === 0x3a) return position === 0 ? text.slice(start, end + 1) : `,${text.slice(start, end + 1)}`;
  return `${comma}${text.slice(start, end)}:`;
}
