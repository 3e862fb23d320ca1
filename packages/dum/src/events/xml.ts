/**
 * @internal The few XML helpers the event-package bodies need: escaping, and a tolerant
 * reader of the elements and attributes of small documents (PIDF, dialog-info). It is
 * not a general XML parser: it ignores namespaces prefixes, comments, processing
 * instructions and CDATA, and never throws on malformed input (it returns what it could
 * read), so a peer's bad body cannot break the process.
 */

/** Escape text for an XML element or a double-quoted attribute. */
export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** The text of an element or attribute with the five predefined entities and numeric references resolved. */
export function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    const code = e.startsWith('#x')
      ? Number.parseInt(e.slice(2), 16)
      : Number.parseInt(e.slice(1), 10);
    return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '';
  });
}

/** One element read from a document: its local name, attributes, and inner text (raw). */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  /** The content between the start and end tags, unparsed ('' for an empty element). */
  inner: string;
}

/** The largest document read (bytes of text): anything longer is cut. */
const MAX_XML = 256 * 1024;

/**
 * Every element named `local` (namespace prefix ignored) directly or deeply inside `xml`,
 * outermost first, without nesting of the same name.
 */
export function elements(xml: string, local: string): XmlElement[] {
  const text = xml.length > MAX_XML ? xml.slice(0, MAX_XML) : xml;
  const out: XmlElement[] = [];
  const open = new RegExp(`<(?:[A-Za-z_][\\w.-]*:)?${local}(\\s[^<>]*?)?(/?)>`, 'g');
  for (let m = open.exec(text); m !== null; m = open.exec(text)) {
    const attrs = readAttrs(m[1] ?? '');
    if (m[2] === '/') {
      out.push({ name: local, attrs, inner: '' });
      continue;
    }
    const close = new RegExp(`</(?:[A-Za-z_][\\w.-]*:)?${local}\\s*>`, 'g');
    close.lastIndex = open.lastIndex;
    const c = close.exec(text);
    if (!c) break;
    out.push({ name: local, attrs, inner: text.slice(open.lastIndex, c.index) });
    open.lastIndex = close.lastIndex;
  }
  return out;
}

/** The first element named `local`, if any. */
export function element(xml: string, local: string): XmlElement | undefined {
  return elements(xml, local)[0];
}

/** The trimmed, unescaped text of the first element named `local`, if any. */
export function textOf(xml: string, local: string): string | undefined {
  const e = element(xml, local);
  return e === undefined ? undefined : unescapeXml(e.inner.replace(/<[^>]*>/g, '')).trim();
}

function readAttrs(s: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  const re = /([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/g;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const name = (m[1] as string).replace(/^[\w.-]+:/, (p) => (p === 'xml:' ? p : ''));
    attrs[name] = unescapeXml(m[3] ?? m[4] ?? '');
  }
  return attrs;
}
