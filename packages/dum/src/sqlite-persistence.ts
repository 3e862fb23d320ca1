import { type Contact, parseHeader } from '@sipworks/message';
import type { Clock, TimerHandle } from '@sipworks/stack';
import type { ContactBinding, RegistrationPersistenceManager } from './handlers.ts';
import { bindingKey } from './registration-persistence.ts';

/** The part of a better-sqlite3 `Database` used here. */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
  close(): unknown;
  readonly open?: boolean;
}

export interface SqliteStatement {
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export interface SqliteRegistrationPersistenceOptions {
  /** Wall-clock time in ms since the epoch (default `Date.now`; give `() => dum.now()` on a virtual clock). */
  now?: () => number;
  /** Where the sweep timer runs; without one, bindings are swept on read only. */
  clock?: Clock;
  /** How often expired bindings are deleted (ms, default 60,000). */
  sweepIntervalMs?: number;
  /** Table name (default `sip_bindings`). */
  table?: string;
}

interface Row {
  aor: string;
  contact_key: string;
  contact: string;
  expires: number;
  call_id: string;
  cseq: number;
  q: number | null;
  instance_id: string | null;
  reg_id: number | null;
  path: string | null;
}

/**
 * Registrar bindings in SQLite through better-sqlite3 (version 12, which runs on
 * Node 20), so they survive a restart of the registrar. better-sqlite3 is an optional
 * peer dependency: it is loaded only by `open(path)`; an application that has a
 * `Database` already passes it to the constructor.
 */
export class SqliteRegistrationPersistence implements RegistrationPersistenceManager {
  private readonly db: SqliteDatabase;
  private readonly owned: boolean;
  private readonly now: () => number;
  private readonly clock: Clock | undefined;
  private readonly interval: number;
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly sql: {
    select: SqliteStatement;
    upsert: SqliteStatement;
    remove: SqliteStatement;
    removeAll: SqliteStatement;
    aors: SqliteStatement;
    sweepAor: SqliteStatement;
    sweep: SqliteStatement;
  };

  constructor(
    db: SqliteDatabase,
    options: SqliteRegistrationPersistenceOptions = {},
    owned = false,
  ) {
    this.db = db;
    this.owned = owned;
    this.now = options.now ?? Date.now;
    this.clock = options.clock;
    this.interval = options.sweepIntervalMs ?? 60_000;
    const t = options.table ?? 'sip_bindings';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(t)) throw new TypeError(`invalid table name: ${t}`);
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${t} (
        aor TEXT NOT NULL,
        contact_key TEXT NOT NULL,
        contact TEXT NOT NULL,
        expires INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        cseq INTEGER NOT NULL,
        q REAL,
        instance_id TEXT,
        reg_id INTEGER,
        path TEXT,
        PRIMARY KEY (aor, contact_key)
      );
      CREATE INDEX IF NOT EXISTS ${t}_expires ON ${t} (expires);`,
    );
    this.sql = {
      select: db.prepare(`SELECT * FROM ${t} WHERE aor = ? ORDER BY rowid`),
      upsert: db.prepare(
        `INSERT INTO ${t} (aor, contact_key, contact, expires, call_id, cseq, q, instance_id, reg_id, path)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (aor, contact_key) DO UPDATE SET contact = excluded.contact,
           expires = excluded.expires, call_id = excluded.call_id, cseq = excluded.cseq,
           q = excluded.q, instance_id = excluded.instance_id, reg_id = excluded.reg_id,
           path = excluded.path`,
      ),
      remove: db.prepare(`DELETE FROM ${t} WHERE aor = ? AND contact_key = ?`),
      removeAll: db.prepare(`DELETE FROM ${t} WHERE aor = ?`),
      aors: db.prepare(`SELECT DISTINCT aor FROM ${t} WHERE expires > ? ORDER BY aor`),
      sweepAor: db.prepare(`DELETE FROM ${t} WHERE aor = ? AND expires <= ?`),
      sweep: db.prepare(`DELETE FROM ${t} WHERE expires <= ?`),
    };
    this.schedule();
  }

  /** Open (or create) the database file at `path` with better-sqlite3, loaded now. */
  static async open(
    path: string,
    options?: SqliteRegistrationPersistenceOptions,
  ): Promise<SqliteRegistrationPersistence> {
    const name = 'better-sqlite3';
    let mod: { default: new (path: string) => SqliteDatabase };
    try {
      mod = (await import(name)) as typeof mod;
    } catch (e) {
      throw new Error(
        'SqliteRegistrationPersistence needs better-sqlite3 (npm install better-sqlite3@12)',
        { cause: e },
      );
    }
    const db = new mod.default(path);
    return new SqliteRegistrationPersistence(db, options, true);
  }

  async getContacts(aor: string): Promise<ContactBinding[]> {
    this.sql.sweepAor.run(aor, this.now());
    return (this.sql.select.all(aor) as Row[]).map(fromRow);
  }

  async putContact(b: ContactBinding): Promise<void> {
    this.sql.upsert.run(
      b.aor,
      bindingKey(b),
      b.contact.toString(),
      Math.round(b.expires),
      b.callId,
      b.cseq,
      b.q ?? null,
      b.instanceId ?? null,
      b.regId ?? null,
      b.path ? JSON.stringify(b.path) : null,
    );
  }

  async removeContact(aor: string, contactUri: string): Promise<void> {
    this.sql.remove.run(aor, contactUri);
  }

  async removeAll(aor: string): Promise<void> {
    this.sql.removeAll.run(aor);
  }

  async aors(): Promise<string[]> {
    return (this.sql.aors.all(this.now()) as { aor: string }[]).map((r) => r.aor);
  }

  /** Delete every expired binding now; returns how many were deleted. */
  sweep(): number {
    const r = this.sql.sweep.run(this.now()) as { changes?: number } | undefined;
    return r?.changes ?? 0;
  }

  /** Stop the sweep timer, and close the database when `open` opened it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) this.clock?.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.owned) this.db.close();
  }

  private schedule(): void {
    const clock = this.clock;
    if (!clock || this.closed || this.interval <= 0) return;
    const t = clock.setTimeout(() => {
      this.timer = undefined;
      if (this.closed) return;
      this.sweep();
      this.schedule();
    }, this.interval);
    (t as { unref?: () => void } | undefined)?.unref?.();
    this.timer = t;
  }
}

function fromRow(r: Row): ContactBinding {
  const b: ContactBinding = {
    aor: r.aor,
    contact: parseHeader<Contact>('Contact', r.contact)[0] as Contact,
    expires: Number(r.expires),
    callId: r.call_id,
    cseq: Number(r.cseq),
  };
  if (r.q !== null) b.q = r.q;
  if (r.instance_id !== null) b.instanceId = r.instance_id;
  if (r.reg_id !== null) b.regId = Number(r.reg_id);
  if (r.path !== null) b.path = JSON.parse(r.path) as string[];
  return b;
}
