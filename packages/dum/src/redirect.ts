import type { Contact, SipResponse, Uri } from '@sipworks/message';

/**
 * Follows 3xx responses (RFC 3261 §8.1.3.4): tries the Contacts in q-value order, never
 * the same target twice, and asks an optional hook whether a target may be tried.
 */
export class RedirectManager {
  /** Return false to veto a target. */
  shouldTry: ((target: Uri, response: SipResponse) => boolean) | undefined;
  /** The most targets tried for one request (default 10). */
  maxTargets = 10;

  /** The targets of a 3xx, best first, without those already tried. */
  targets(response: SipResponse, tried: ReadonlySet<string>): Uri[] {
    const contacts = response.contacts.filter((c) => !c.star);
    const withQ = contacts.map((c: Contact, i) => ({ c, q: safeQ(c), i }));
    withQ.sort((a, b) => b.q - a.q || a.i - b.i);
    const out: Uri[] = [];
    for (const { c } of withQ) {
      const uri = c.uri.clone();
      const key = uri.toString();
      if (tried.has(key)) continue;
      if (this.shouldTry && !this.shouldTry(uri, response)) continue;
      out.push(uri);
    }
    return out;
  }
}

function safeQ(c: Contact): number {
  try {
    return c.q ?? 1;
  } catch {
    return 0;
  }
}
