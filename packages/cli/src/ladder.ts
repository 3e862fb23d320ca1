/**
 * A ladder (sequence) diagram of SIP messages, drawn as text, one line per message, as
 * sngrep draws a call flow: one column per address, an arrow from the sender's column to
 * the receiver's labelled with the method or the status code and reason, and the time
 * at the left. Pure: messages in, lines out; the caller prints them.
 *
 * ```
 *                 127.0.0.1:5070          127.0.0.1:5060
 * 12:00:01.004          |-------INVITE--------->|
 * 12:00:01.010          |<------100 Trying------|
 * ```
 */

/** One message to draw. */
export interface LadderMessage {
  /** When it was seen (ms since the epoch). */
  time: number;
  /** The sender's column name (an address, or a name). */
  from: string;
  /** The receiver's column name. */
  to: string;
  /** `INVITE`, `200 OK`... */
  label: string;
  /** The status code for a response (colours it), absent for a request. */
  status?: number | undefined;
  /** A note after the arrow (the transport, a Call-ID...). */
  note?: string | undefined;
}

export interface LadderOptions {
  /** Width of each column in characters (default 26, at least 12). */
  columnWidth?: number;
  /** ANSI colours (default false). */
  colour?: boolean;
  /** Columns to place first, in order (others are added as they appear). */
  columns?: string[];
  /** The time zone offset of the timestamps: 'utc' (default) or 'local'. */
  clock?: 'utc' | 'local';
}

const ANSI = {
  reset: '\x1b[0m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
  cyan: '\x1b[36m',
  yellow: '\x1b[33m',
  green: '\x1b[32m',
  red: '\x1b[31m',
  magenta: '\x1b[35m',
} as const;

const TIME_WIDTH = 12;

/** `HH:MM:SS.mmm` of a time. */
export function formatTime(ms: number, clock: 'utc' | 'local' = 'utc'): string {
  const d = new Date(ms);
  const utc = clock === 'utc';
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const h = utc ? d.getUTCHours() : d.getHours();
  const m = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  const x = utc ? d.getUTCMilliseconds() : d.getMilliseconds();
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(x, 3)}`;
}

/** The colour of a label: requests cyan, 1xx yellow, 2xx green, 3xx magenta, 4xx-6xx red. */
function colourOf(status: number | undefined): string {
  if (status === undefined) return ANSI.cyan;
  if (status < 200) return ANSI.yellow;
  if (status < 300) return ANSI.green;
  if (status < 400) return ANSI.magenta;
  return ANSI.red;
}

/**
 * Draws messages as they come. Columns are added as new addresses appear; each time the
 * columns change, the header line is drawn again before the next arrow, so a live trace
 * always shows which column is which.
 */
export class Ladder {
  private readonly width: number;
  private readonly colour: boolean;
  private readonly clock: 'utc' | 'local';
  private readonly cols: string[] = [];
  private headerDrawn = 0;

  constructor(options: LadderOptions = {}) {
    this.width = Math.max(12, options.columnWidth ?? 26);
    this.colour = options.colour ?? false;
    this.clock = options.clock ?? 'utc';
    for (const c of options.columns ?? []) this.column(c);
  }

  /** The columns so far, left to right. */
  get columns(): readonly string[] {
    return this.cols;
  }

  /** The lines for one message: a header when the columns changed, then the arrow. */
  push(m: LadderMessage): string[] {
    const a = this.column(m.from);
    const b = this.column(m.to);
    const out: string[] = [];
    if (this.headerDrawn !== this.cols.length) {
      out.push(this.header());
      this.headerDrawn = this.cols.length;
    }
    out.push(this.arrow(m, a, b));
    return out;
  }

  /** The header line: each column's name centred over its lifeline. */
  header(): string {
    let line = ' '.repeat(TIME_WIDTH + 1);
    for (const name of this.cols) {
      const n = name.length > this.width - 2 ? `${name.slice(0, this.width - 3)}~` : name;
      // The name's middle character sits over the lifeline.
      const left = Math.max(0, Math.floor(this.width / 2) - Math.floor(n.length / 2));
      line += `${' '.repeat(left)}${n}${' '.repeat(this.width - left - n.length)}`;
    }
    line = line.trimEnd();
    return this.colour ? `${ANSI.bold}${line}${ANSI.reset}` : line;
  }

  private column(name: string): number {
    const i = this.cols.indexOf(name);
    if (i >= 0) return i;
    this.cols.push(name);
    return this.cols.length - 1;
  }

  /** The centre of column `i`, counted from the start of the diagram area. */
  private centre(i: number): number {
    return i * this.width + Math.floor(this.width / 2);
  }

  private arrow(m: LadderMessage, a: number, b: number): string {
    const total = this.cols.length * this.width;
    const cells = Array.from({ length: total }, () => ' ');
    for (let i = 0; i < this.cols.length; i++) cells[this.centre(i)] = '|';
    const paint: { from: number; to: number; colour: string }[] = [];
    if (a === b) {
      // A message to oneself (a loop): drawn beside the lifeline.
      const c = this.centre(a);
      const text = `<-- ${m.label}`;
      for (let i = 0; i < text.length && c + 1 + i < total; i++)
        cells[c + 1 + i] = text[i] as string;
      paint.push({
        from: c + 1,
        to: Math.min(total, c + 1 + text.length),
        colour: colourOf(m.status),
      });
    } else {
      const left = Math.min(this.centre(a), this.centre(b));
      const right = Math.max(this.centre(a), this.centre(b));
      const span = right - left - 1;
      for (let i = left + 1; i < right; i++) cells[i] = '-';
      if (a < b) cells[right - 1] = '>';
      else cells[left + 1] = '<';
      const room = span - 4;
      let label = m.label;
      if (label.length > room) label = room > 1 ? `${label.slice(0, room - 1)}~` : '';
      const start = left + 1 + Math.floor((span - label.length) / 2);
      for (let i = 0; i < label.length; i++) cells[start + i] = label[i] as string;
      paint.push({ from: left + 1, to: right, colour: colourOf(m.status) });
    }
    let body = cells.join('');
    if (this.colour) {
      // Colour the arrow; lifelines stay plain.
      const p = paint[0];
      if (p)
        body = `${body.slice(0, p.from)}${p.colour}${body.slice(p.from, p.to)}${ANSI.reset}${body.slice(p.to)}`;
    }
    let line = `${formatTime(m.time, this.clock).padEnd(TIME_WIDTH)} ${body}`.trimEnd();
    if (m.note) line += this.colour ? ` ${ANSI.dim}${m.note}${ANSI.reset}` : ` ${m.note}`;
    return line;
  }
}

/** Draw a whole flow at once: the header, then one line per message. */
export function renderLadder(messages: LadderMessage[], options: LadderOptions = {}): string[] {
  const columns = [...(options.columns ?? [])];
  for (const m of messages) {
    if (!columns.includes(m.from)) columns.push(m.from);
    if (!columns.includes(m.to)) columns.push(m.to);
  }
  const ladder = new Ladder({ ...options, columns });
  const lines: string[] = [];
  for (const m of messages) lines.push(...ladder.push(m));
  if (lines.length === 0) lines.push(ladder.header());
  return lines;
}

/** The label of a message's start line: the method, or the status code and reason. */
export function labelOf(message: {
  isRequest?: boolean;
  method?: string;
  status?: number;
  reason?: string;
}): string {
  if (message.status !== undefined) return `${message.status} ${message.reason ?? ''}`.trim();
  return message.method ?? '?';
}
