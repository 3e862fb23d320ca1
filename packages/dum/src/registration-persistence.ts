import type { Clock, TimerHandle } from '@sipworks/stack';
import type {
  ContactBinding,
  RegistrationPersistenceManager,
  RegistrationUpdate,
} from './handlers.ts';

export interface InMemoryRegistrationPersistenceOptions {
  /** Wall-clock time in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** Where the sweep timer runs (the stack's clock); without one, bindings are swept on read only. */
  clock?: Clock;
  /** How often expired bindings are swept (ms, default 60,000). */
  sweepIntervalMs?: number;
}

/** The key of a binding within its address of record: the Contact URI as written. */
export function bindingKey(b: ContactBinding): string {
  return b.contact.uri.toString();
}

/**
 * Bindings kept in memory, the default store of a DUM registrar. Expired bindings are
 * dropped whenever an address of record is read, and by a timer on the given clock
 * (unref'd, so it never keeps a process alive).
 */
export class InMemoryRegistrationPersistence implements RegistrationPersistenceManager {
  private readonly byAor = new Map<string, Map<string, ContactBinding>>();
  private readonly now: () => number;
  private readonly clock: Clock | undefined;
  private readonly interval: number;
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(options: InMemoryRegistrationPersistenceOptions = {}) {
    this.now = options.now ?? Date.now;
    this.clock = options.clock;
    this.interval = options.sweepIntervalMs ?? 60_000;
    this.schedule();
  }

  async getContacts(aor: string): Promise<ContactBinding[]> {
    this.sweepAor(aor, this.now());
    return [...(this.byAor.get(aor)?.values() ?? [])].map(copy);
  }

  async putContact(binding: ContactBinding): Promise<void> {
    this.put(binding);
  }

  async removeContact(aor: string, contactUri: string): Promise<void> {
    this.remove(aor, contactUri);
  }

  /**
   * One REGISTER's changes at once (RFC 3261 §10.3 step 7: all or none): what
   * `removeAll`, `removeContact` and `putContact` would do in turn, without a turn of the
   * event loop between them; resolves with every binding of the AOR afterwards.
   */
  async updateContacts(aor: string, update: RegistrationUpdate): Promise<ContactBinding[]> {
    if (update.removeAll) this.byAor.delete(aor);
    for (const key of update.remove) this.remove(aor, key);
    for (const b of update.put) this.put(b);
    return this.getContacts(aor);
  }

  private put(binding: ContactBinding): void {
    let m = this.byAor.get(binding.aor);
    if (!m) {
      m = new Map();
      this.byAor.set(binding.aor, m);
    }
    m.set(bindingKey(binding), copy(binding));
  }

  private remove(aor: string, contactUri: string): void {
    const m = this.byAor.get(aor);
    if (!m) return;
    m.delete(contactUri);
    if (m.size === 0) this.byAor.delete(aor);
  }

  async removeAll(aor: string): Promise<void> {
    this.byAor.delete(aor);
  }

  async aors(): Promise<string[]> {
    this.sweep();
    return [...this.byAor.keys()];
  }

  /** Drop every expired binding now; returns how many were dropped. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const aor of [...this.byAor.keys()]) n += this.sweepAor(aor, now);
    return n;
  }

  /** Stop the sweep timer. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock?.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private sweepAor(aor: string, now: number): number {
    const m = this.byAor.get(aor);
    if (!m) return 0;
    let n = 0;
    for (const [k, b] of m)
      if (b.expires <= now) {
        m.delete(k);
        n++;
      }
    if (m.size === 0) this.byAor.delete(aor);
    return n;
  }

  private schedule(): void {
    const clock = this.clock;
    if (!clock || this.closed || this.interval <= 0) return;
    const t = clock.setTimeout(() => {
      this.timer = undefined;
      this.sweep();
      this.schedule();
    }, this.interval);
    (t as { unref?: () => void } | undefined)?.unref?.();
    this.timer = t;
  }
}

function copy(b: ContactBinding): ContactBinding {
  return { ...b, contact: b.contact.clone(), ...(b.path ? { path: [...b.path] } : {}) };
}
