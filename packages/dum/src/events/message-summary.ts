/** The MIME type of a message summary (RFC 3842 §5.2). */
export const MESSAGE_SUMMARY_CONTENT_TYPE = 'application/simple-message-summary';

/** Message context classes (RFC 3458 §4): what a count line is about. */
export type MessageClass =
  | 'voice-message'
  | 'fax-message'
  | 'pager-message'
  | 'multimedia-message'
  | 'text-message'
  | 'none';

const CLASSES: readonly string[] = [
  'voice-message',
  'fax-message',
  'pager-message',
  'multimedia-message',
  'text-message',
  'none',
];

/** The counts of one message class: `new/old (urgentNew/urgentOld)`. */
export interface MessageCounts {
  new: number;
  old: number;
  urgentNew?: number;
  urgentOld?: number;
}

/** A message summary (RFC 3842 §5.2). */
export interface MessageSummary {
  /** `Messages-Waiting: yes` / `no`. */
  messagesWaiting: boolean;
  /** The account the summary is about (`Message-Account`), when given. */
  messageAccount?: string;
  /** The counts per message class, in the order written. */
  counts: Partial<Record<MessageClass, MessageCounts>>;
  /** Extension headers after the summary lines, as [name, value] (RFC 3842 §5.2 opt-msg-headers). */
  extra?: [string, string][];
}

/** Write a message summary body (RFC 3842 §5.2), e.g. `Messages-Waiting: yes` and `Voice-Message: 2/8 (0/2)`. */
export function buildMessageSummary(summary: MessageSummary): string {
  let x = `Messages-Waiting: ${summary.messagesWaiting ? 'yes' : 'no'}\r\n`;
  if (summary.messageAccount !== undefined) x += `Message-Account: ${summary.messageAccount}\r\n`;
  for (const [cls, c] of Object.entries(summary.counts) as [MessageClass, MessageCounts][]) {
    x += `${className(cls)}: ${c.new}/${c.old}`;
    if (c.urgentNew !== undefined || c.urgentOld !== undefined)
      x += ` (${c.urgentNew ?? 0}/${c.urgentOld ?? 0})`;
    x += '\r\n';
  }
  if (summary.extra && summary.extra.length > 0) {
    x += '\r\n';
    for (const [k, v] of summary.extra) x += `${k}: ${v}\r\n`;
  }
  return x;
}

/** `voice-message` -> `Voice-Message`. */
function className(cls: string): string {
  return cls.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
}

/**
 * Read a message summary (RFC 3842 §5.2). Names are case-insensitive; unknown classes and
 * malformed count lines are skipped. Returns undefined when there is no
 * `Messages-Waiting` line; never throws.
 */
export function parseMessageSummary(body: string | Uint8Array): MessageSummary | undefined {
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  const lines = text.slice(0, 64 * 1024).split(/\r?\n/);
  let summary: MessageSummary | undefined;
  let inExtra = false;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') {
      if (summary) inExtra = true;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const lname = name.toLowerCase();
    if (!summary) {
      if (lname !== 'messages-waiting') continue;
      summary = { messagesWaiting: value.toLowerCase() === 'yes', counts: {} };
      continue;
    }
    if (inExtra) {
      (summary.extra ??= []).push([name, value]);
      continue;
    }
    if (lname === 'message-account') {
      summary.messageAccount = value;
      continue;
    }
    if (!CLASSES.includes(lname)) continue;
    const m = /^(\d+)\s*\/\s*(\d+)(?:\s*\(\s*(\d+)\s*\/\s*(\d+)\s*\))?$/.exec(value);
    if (!m) continue;
    const c: MessageCounts = { new: Number(m[1]), old: Number(m[2]) };
    if (m[3] !== undefined) {
      c.urgentNew = Number(m[3]);
      c.urgentOld = Number(m[4]);
    }
    summary.counts[lname as MessageClass] = c;
  }
  return summary;
}
