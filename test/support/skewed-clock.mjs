/**
 * Preloaded with `node --import <this file>` to run a process whose wall clock is wrong by
 * CLOCK_SKEW_HOURS hours (negative: behind), as an app instance on a badly set host would be (R19).
 * Every way JavaScript reads the wall clock moves: `Date.now()`, `new Date()` and what is read from
 * it (`getTime()`, `toISOString()`), `Date()` called as a function, and `date.constructor.now()`.
 * A date built from a given time stays that time. The monotonic clocks (`performance.now()`,
 * `process.hrtime`) measure durations, not the time of day, and are left alone; so is any clock
 * read outside JavaScript, such as SQLite's `julianday('now')` in its C library.
 */
const hours = Number(process.env.CLOCK_SKEW_HOURS ?? '');
if (!Number.isFinite(hours)) {
  throw new Error(`skewed-clock: CLOCK_SKEW_HOURS must be a number of hours, not "${process.env.CLOCK_SKEW_HOURS ?? ''}"`);
}
const offsetMs = Math.round(hours * 60 * 60 * 1000);
const RealDate = globalThis.Date;
const skewedNow = () => RealDate.now() + offsetMs;

function Date(...args) {
  if (new.target === undefined) return new RealDate(skewedNow()).toString();
  // new.target keeps subclasses (class X extends Date) working, with their own prototype.
  return Reflect.construct(RealDate, args.length === 0 ? [skewedNow()] : args, new.target);
}
// Statics (Date.UTC, Date.parse) come from the real Date; instances share its prototype, so
// instanceof and every method work on dates from before and after the swap alike.
Object.setPrototypeOf(Date, RealDate);
Date.prototype = RealDate.prototype;
Date.now = skewedNow;
Object.defineProperty(Date, 'length', { value: RealDate.length });
RealDate.prototype.constructor = Date;
globalThis.Date = Date;

process.stderr.write(`skewed-clock: this process's wall clock reads ${hours >= 0 ? '+' : ''}${hours} h off\n`);
