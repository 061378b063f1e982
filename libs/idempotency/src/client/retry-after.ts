const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

// RFC 9110 §5.6.7: a recipient must accept all three HTTP-date forms, and all of them are UTC.
// Date.parse is not used: it reads asctime as local time and accepts strings that are no date at all.
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC_850 = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * How long a `Retry-After` value asks the client to wait, in ms: delay-seconds or an HTTP-date
 * (a date in the past means "now"). `undefined` when the header is absent or not valid, so the
 * caller falls back to its own backoff instead of guessing.
 */
export function parseRetryAfterMs(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = parseHttpDate(trimmed, nowMs);
  return date === undefined ? undefined : Math.max(0, date - nowMs);
}

function parseHttpDate(value: string, nowMs: number): number | undefined {
  let match = IMF_FIXDATE.exec(value);
  if (match) return utc(Number(match[3]), match[2], Number(match[1]), match.slice(4, 7));
  match = RFC_850.exec(value);
  if (match) return utc(fullYear(Number(match[3]), nowMs), match[2], Number(match[1]), match.slice(4, 7));
  match = ASCTIME.exec(value);
  if (match) return utc(Number(match[6]), match[1], Number(match[2].trim()), match.slice(3, 6));
  return undefined;
}

// RFC 9110: a two-digit year more than 50 years in the future means the most recent past year with those digits.
function fullYear(twoDigits: number, nowMs: number): number {
  const currentYear = new Date(nowMs).getUTCFullYear();
  let year = Math.floor(currentYear / 100) * 100 + twoDigits;
  if (year > currentYear + 50) year -= 100;
  return year;
}

function utc(year: number, month: string, day: number, [hours, minutes, seconds]: string[]): number | undefined {
  const [h, m, s] = [Number(hours), Number(minutes), Number(seconds)];
  if (day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return undefined;
  return Date.UTC(year, MONTHS.indexOf(month), day, h, m, s);
}
