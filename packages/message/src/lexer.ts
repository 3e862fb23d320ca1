import { TOKEN, WORD } from './chars.ts';
import { headerError, type SipParseError } from './errors.ts';

/**
 * A cursor over one header value (already unfolded or with folds, which count as
 * whitespace). The typed header parsers are written on it.
 */
export class Lexer {
  readonly s: string;
  i: number;
  readonly end: number;
  readonly header: string | undefined;

  constructor(s: string, header?: string, start = 0, end = s.length) {
    this.s = s;
    this.i = start;
    this.end = end;
    this.header = header;
  }

  fail(what: string): SipParseError {
    const where = this.i < this.end ? `at '${this.s.slice(this.i, this.i + 12)}'` : 'at the end';
    return headerError(
      `${this.header ? `${this.header}: ` : ''}${what} ${where}`,
      this.header,
      this.i,
    );
  }

  atEnd(): boolean {
    return this.i >= this.end;
  }

  peek(): number {
    return this.i < this.end ? this.s.charCodeAt(this.i) : -1;
  }

  /** Skip linear white space: SP, HTAB and CRLF followed by SP/HTAB (a fold). */
  ws(): void {
    const s = this.s;
    let i = this.i;
    while (i < this.end) {
      const c = s.charCodeAt(i);
      if (c === 32 || c === 9) i++;
      else if (
        c === 13 &&
        s.charCodeAt(i + 1) === 10 &&
        (s.charCodeAt(i + 2) === 32 || s.charCodeAt(i + 2) === 9)
      )
        i += 3;
      else break;
    }
    this.i = i;
  }

  /** Skip whitespace, then consume `ch` if it is next (and whitespace after it). */
  eat(ch: number): boolean {
    this.ws();
    if (this.i < this.end && this.s.charCodeAt(this.i) === ch) {
      this.i++;
      this.ws();
      return true;
    }
    return false;
  }

  expect(ch: number, what: string): void {
    if (!this.eat(ch)) throw this.fail(`expected ${what}`);
  }

  /** Read a run of characters from `table` (at least one). */
  run(table: Uint8Array, what: string): string {
    const s = this.s;
    const start = this.i;
    let i = start;
    while (i < this.end) {
      const c = s.charCodeAt(i);
      if (c > 127 || table[c] === 0) break;
      i++;
    }
    if (i === start) throw this.fail(`expected ${what}`);
    this.i = i;
    return s.slice(start, i);
  }

  token(what = 'a token'): string {
    return this.run(TOKEN, what);
  }

  /** word *( "@" word ), as in Call-ID. */
  callId(): string {
    const start = this.i;
    this.run(WORD, 'a Call-ID');
    if (this.peek() === 64) {
      this.i++;
      this.run(WORD, 'a Call-ID host');
    }
    return this.s.slice(start, this.i);
  }

  /** A quoted-string; returns its content with quoted-pairs resolved. The cursor must be on the DQUOTE. */
  quoted(): string {
    const s = this.s;
    let i = this.i + 1;
    let out = '';
    let from = i;
    while (i < this.end) {
      const c = s.charCodeAt(i);
      if (c === 34) {
        out += s.slice(from, i);
        this.i = i + 1;
        return out;
      }
      if (c === 92) {
        if (i + 1 >= this.end) break;
        const n = s.charCodeAt(i + 1);
        if (n === 10 || n === 13) throw this.fail('bad quoted-pair');
        out += s.slice(from, i);
        from = i + 1;
        i += 2;
        continue;
      }
      if (c === 13 || c === 10) {
        // Only a fold (CRLF followed by white space) may appear in a quoted string.
        if (
          !(
            c === 13 &&
            s.charCodeAt(i + 1) === 10 &&
            (s.charCodeAt(i + 2) === 32 || s.charCodeAt(i + 2) === 9)
          )
        )
          throw this.fail('line break in a quoted string');
        i += 3;
        continue;
      }
      if (c < 32 && c !== 9) throw this.fail('control character in a quoted string');
      i++;
    }
    this.i = i;
    throw this.fail('unterminated quoted string');
  }

  /** A comment "( ... )" with nesting; returns its text without the outer parentheses. */
  comment(): string {
    const s = this.s;
    let depth = 0;
    const start = this.i;
    let i = this.i;
    while (i < this.end) {
      const c = s.charCodeAt(i);
      if (c === 92) {
        i += 2;
        continue;
      }
      if (c === 40) depth++;
      else if (c === 41) {
        depth--;
        if (depth === 0) {
          this.i = i + 1;
          return s.slice(start + 1, i);
        }
      }
      i++;
    }
    this.i = i;
    throw this.fail('unterminated comment');
  }

  /** Unsigned decimal of at most `max`. */
  number(what: string, max = 0xffffffff): number {
    const s = this.s;
    const start = this.i;
    let i = start;
    let v = 0;
    while (i < this.end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    if (i === start) throw this.fail(`expected ${what}`);
    if (v > max || i - start > 10) {
      this.i = start;
      throw this.fail(`${what} out of range (at most ${max})`);
    }
    this.i = i;
    return v;
  }

  /** Throw unless only white space is left. */
  finish(): void {
    this.ws();
    if (this.i < this.end) throw this.fail('unexpected text');
  }
}

/** Quote a string as a quoted-string when it is not a token (or always, when `force`). */
export function quote(s: string, force = false): string {
  if (!force) {
    let tok = s.length > 0;
    for (let i = 0; i < s.length && tok; i++) {
      const c = s.charCodeAt(i);
      if (c > 127 || TOKEN[c] === 0) tok = false;
    }
    if (tok) return s;
  }
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/** Split a header value at commas that are outside quoted strings, angle brackets and comments. Returns [start, end) pairs, trimmed. */
export function splitList(s: string): string[] {
  const out: string[] = [];
  let depthAngle = 0;
  let depthParen = 0;
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
      continue;
    }
    if (c === 34) inQuote = true;
    else if (c === 60) depthAngle++;
    else if (c === 62) depthAngle = depthAngle > 0 ? depthAngle - 1 : 0;
    else if (c === 40) depthParen++;
    else if (c === 41) depthParen = depthParen > 0 ? depthParen - 1 : 0;
    else if (c === 44 && depthAngle === 0 && depthParen === 0) {
      const v = s.slice(start, i).trim();
      if (v.length > 0) out.push(v);
      start = i + 1;
    }
  }
  const v = s.slice(start).trim();
  if (v.length > 0) out.push(v);
  return out;
}
