import { element, elements, escapeXml, textOf } from './xml.ts';

/** The MIME type of a PIDF document (RFC 3863 §4). */
export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

/** One tuple of a presence document (RFC 3863 §4.1.2): a basic status and what goes with it. */
export interface PresenceTuple {
  id: string;
  /** `open` (able to receive) or `closed` (RFC 3863 §4.1.4). */
  basic: 'open' | 'closed';
  /** Where to reach the presentity through this tuple (RFC 3863 §4.1.5). */
  contact?: string;
  /** A note about this tuple (RFC 3863 §4.1.6). */
  note?: string;
  /** When the status was set (RFC 3863 §4.1.7), as written. */
  timestamp?: string;
}

/** A presence document: the presentity and its tuples (RFC 3863 §4.1). */
export interface Presence {
  /** The `pres:` URI of the presentity. */
  entity: string;
  tuples: PresenceTuple[];
  /** Notes about the presentity as a whole (RFC 3863 §4.1.6). */
  notes?: string[];
}

/** Write a PIDF document (RFC 3863 §4) for `presence`. */
export function buildPidf(presence: Presence): string {
  let x = '<?xml version="1.0" encoding="UTF-8"?>\n';
  x += `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${escapeXml(presence.entity)}">\n`;
  for (const t of presence.tuples) {
    x += `  <tuple id="${escapeXml(t.id)}">\n`;
    x += `    <status><basic>${t.basic}</basic></status>\n`;
    if (t.contact !== undefined) x += `    <contact>${escapeXml(t.contact)}</contact>\n`;
    if (t.note !== undefined) x += `    <note>${escapeXml(t.note)}</note>\n`;
    if (t.timestamp !== undefined) x += `    <timestamp>${escapeXml(t.timestamp)}</timestamp>\n`;
    x += '  </tuple>\n';
  }
  for (const n of presence.notes ?? []) x += `  <note>${escapeXml(n)}</note>\n`;
  x += '</presence>\n';
  return x;
}

/**
 * Read a PIDF document: the entity, every tuple with its basic status (a tuple with
 * none or an unknown one counts as `closed`), contact, note and timestamp, and the
 * presentity's notes. Returns undefined when there is no `presence` element; never
 * throws on malformed input.
 */
export function parsePidf(xml: string | Uint8Array): Presence | undefined {
  const text = typeof xml === 'string' ? xml : new TextDecoder().decode(xml);
  const root = element(text, 'presence');
  if (!root) return undefined;
  const tuples: PresenceTuple[] = [];
  for (const t of elements(root.inner, 'tuple')) {
    const basic = textOf(t.inner, 'basic')?.toLowerCase() === 'open' ? 'open' : 'closed';
    const tuple: PresenceTuple = { id: t.attrs.id ?? '', basic };
    const contact = textOf(t.inner, 'contact');
    if (contact !== undefined) tuple.contact = contact;
    const note = textOf(t.inner, 'note');
    if (note !== undefined) tuple.note = note;
    const ts = textOf(t.inner, 'timestamp');
    if (ts !== undefined) tuple.timestamp = ts;
    tuples.push(tuple);
  }
  // Notes of the presentity: those outside any tuple.
  const outside = root.inner.replace(
    /<(?:[\w.-]+:)?tuple[\s>][\s\S]*?<\/(?:[\w.-]+:)?tuple\s*>/g,
    '',
  );
  const notes = elements(outside, 'note').map((n) => textOf(`<n>${n.inner}</n>`, 'n') ?? '');
  const p: Presence = { entity: root.attrs.entity ?? '', tuples };
  if (notes.length > 0) p.notes = notes;
  return p;
}

/** Whether any tuple of the document is `open`. */
export function isOpen(presence: Presence): boolean {
  return presence.tuples.some((t) => t.basic === 'open');
}
