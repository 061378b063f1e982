import { canonicalJsonNumber } from './json-number.js';
import { ARRAY, ESCAPED_STRING, FALSE, NULL, NUMBER, OBJECT, PLAIN_NUMBER, PLAIN_STRING, readTape, SLOTS, TRUE } from './json-tape.js';

const LITERAL_TEXT: Record<number, string> = { [TRUE]: 'true', [FALSE]: 'false', [NULL]: 'null' };

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
