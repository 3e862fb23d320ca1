import {
  bindingKey,
  type ContactBinding,
  type RegistrationPersistenceManager,
  type RegistrationUpdate,
} from '@sipworks/dum';
import { type Contact, parseHeader } from '@sipworks/message';
import type { Redis } from 'ioredis';
import {
  createClient,
  LuaScript,
  type RedisClientOptions,
  RedisConnection,
  type RedisStoreOptions,
} from './client.ts';
import { RedisStoreError } from './errors.ts';

export type RedisRegistrationPersistenceOptions = RedisStoreOptions;

/**
 * The Lua shared by the scripts of one address of record.
 * KEYS[1]: the bindings (hash: binding key -> JSON); KEYS[2]: their expiries (sorted
 * set: binding key -> ms since the epoch); KEYS[3]: every address of record (sorted set:
 * AOR -> its last expiry). ARGV[1]: now (ms); ARGV[2]: the address of record.
 */
const COMMON = `
local now = tonumber(ARGV[1])
local function prune()
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
  for i = 1, #gone do redis.call('HDEL', KEYS[1], gone[i]) end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
end
local function settle()
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #last == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[2])
    return
  end
  local at = tonumber(last[2])
  local ttl = math.max(1, math.ceil(at - now))
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[3], at, ARGV[2])
end
`;

/** Drop the expired bindings, then return every binding left (flat: key, JSON, ...). */
const GET = new LuaScript(
  'registration-get',
  `${COMMON}
prune()
settle()
return redis.call('HGETALL', KEYS[1])`,
);

/** ARGV[3]: binding key; ARGV[4]: JSON; ARGV[5]: expiry (ms). Add or refresh one binding. */
const PUT = new LuaScript(
  'registration-put',
  `${COMMON}
if tonumber(ARGV[5]) > now then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[3])
end
prune()
settle()
return 1`,
);

/**
 * One REGISTER's changes, all in one step (RFC 3261 §10.3 step 7: all or none), then
 * every binding left (flat: key, JSON, ...). ARGV[3]: '1' to remove every binding first;
 * ARGV[4], ARGV[5]: the REGISTER's Call-ID and CSeq; ARGV[6]: how many keys to remove,
 * then the keys; then (key, JSON, expiry) per binding to add or refresh. Nothing is
 * changed, and an error is answered, when a binding it touches holds the same Call-ID
 * with a CSeq as high (§10.3 steps 6-7, checked again here because another registrar
 * may have stored a newer REGISTER since this one was checked).
 */
const UPDATE = new LuaScript(
  'registration-update',
  `${COMMON}
prune()
local callId = ARGV[4]
local cseq = tonumber(ARGV[5])
local function newer(json)
  if not json then return false end
  local ok, b = pcall(cjson.decode, json)
  return ok and type(b) == 'table' and b.callId == callId and tonumber(b.cseq) ~= nil and tonumber(b.cseq) >= cseq
end
local n = tonumber(ARGV[6])
local touched = {}
if ARGV[3] == '1' then
  touched = redis.call('HVALS', KEYS[1])
else
  for i = 7, 6 + n do table.insert(touched, redis.call('HGET', KEYS[1], ARGV[i])) end
  for i = 7 + n, #ARGV, 3 do table.insert(touched, redis.call('HGET', KEYS[1], ARGV[i])) end
end
for i = 1, #touched do
  if newer(touched[i]) then
    return redis.error_reply('SIPWORKS_CSEQ a binding holds this Call-ID with a CSeq as high')
  end
end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1], KEYS[2]) end
for i = 7, 6 + n do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
for i = 7 + n, #ARGV, 3 do
  if tonumber(ARGV[i + 2]) > now then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
  else
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
settle()
return redis.call('HGETALL', KEYS[1])`,
);

/** ARGV[3]: binding key. Remove one binding. */
const REMOVE = new LuaScript(
  'registration-remove',
  `${COMMON}
redis.call('HDEL', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[3])
prune()
settle()
return 1`,
);

/** Remove every binding of the address of record. */
const REMOVE_ALL = new LuaScript(
  'registration-remove-all',
  `redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1`,
);

/** KEYS[1]: the AOR index; ARGV[1]: now. Drop the AORs whose bindings all expired; list the rest. */
const AORS = new LuaScript(
  'registration-aors',
  `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)`,
);

/** A binding as kept in Redis: the Contact header value as written, and the rest. */
interface StoredBinding {
  contact: string;
  expires: number;
  callId: string;
  cseq: number;
  q?: number;
  instanceId?: string;
  regId?: number;
  path?: string[];
}

/**
 * Registrar bindings (RFC 3261 §10.3) in Redis, shared by every DUM that uses the same
 * Redis and key prefix: a binding one registrar writes, another reads, and bindings
 * outlive a registrar's restart.
 *
 * Each address of record has a hash of its bindings (binding key, the Contact URI as
 * written, to the binding) and a sorted set of their expiries. Every call is one Lua
 * script, so it is atomic: it drops the AOR's expired bindings first, and then sets both
 * keys to expire (PEXPIRE) with the AOR's last binding, so Redis itself deletes an AOR
 * whose bindings all expired, without a sweep. A read costs O(bindings of the AOR).
 * A third sorted set lists the AORs by their last expiry, for `aors()`.
 *
 * The keys of one AOR share a hash tag (`{aor}`), but the AOR index is one key: the
 * store runs on a standalone Redis, or one managed by Sentinel, not on Redis Cluster.
 */
export class RedisRegistrationPersistence implements RegistrationPersistenceManager {
  private readonly conn: RedisConnection;

  /**
   * A store on a client the application made (and closes). Give it a small
   * `maxRetriesPerRequest` (see `STORE_CLIENT_DEFAULTS`): a command left in ioredis's
   * offline queue after the store's timeout could still run when Redis comes back.
   */
  constructor(redis: Redis, options: RedisRegistrationPersistenceOptions = {}, owned = false) {
    this.conn = new RedisConnection(redis, options, owned);
  }

  /** A store on its own connection to `target` (a `redis://` URL or ioredis options), closed by `close()`. */
  static connect(
    target: string | RedisClientOptions,
    options?: RedisRegistrationPersistenceOptions,
  ): RedisRegistrationPersistence {
    return new RedisRegistrationPersistence(createClient(target), options, true);
  }

  /** The ioredis client. */
  get redis(): Redis {
    return this.conn.redis;
  }

  async getContacts(aor: string): Promise<ContactBinding[]> {
    const flat = (await this.conn.call('getContacts', (r) =>
      GET.run(r, this.keys(aor), [this.nowMs(), aor]),
    )) as string[];
    return decodeAll(aor, flat);
  }

  async putContact(binding: ContactBinding): Promise<void> {
    const [key, json, expires] = encode(binding);
    await this.conn.call('putContact', (r) =>
      PUT.run(r, this.keys(binding.aor), [this.nowMs(), binding.aor, key, json, expires]),
    );
  }

  /** One REGISTER's changes in one atomic script and one round trip; every binding after them. */
  async updateContacts(aor: string, update: RegistrationUpdate): Promise<ContactBinding[]> {
    const args: (string | number)[] = [
      this.nowMs(),
      aor,
      update.removeAll ? '1' : '0',
      update.callId,
      update.cseq,
      update.remove.length,
      ...update.remove,
    ];
    for (const b of update.put) args.push(...encode(b));
    const flat = (await this.conn.call('updateContacts', (r) =>
      UPDATE.run(r, this.keys(aor), args),
    )) as string[];
    return decodeAll(aor, flat);
  }

  async removeContact(aor: string, contactUri: string): Promise<void> {
    await this.conn.call('removeContact', (r) =>
      REMOVE.run(r, this.keys(aor), [this.nowMs(), aor, contactUri]),
    );
  }

  async removeAll(aor: string): Promise<void> {
    await this.conn.call('removeAll', (r) =>
      REMOVE_ALL.run(r, this.keys(aor), [this.nowMs(), aor]),
    );
  }

  /** Every address of record with a binding that has not expired, in code-point order. */
  async aors(): Promise<string[]> {
    const list = (await this.conn.call('aors', (r) =>
      AORS.run(r, [this.aorIndex()], [this.nowMs()]),
    )) as string[];
    return list.sort();
  }

  /** Close the connection when `connect` made it. */
  close(): Promise<void> {
    return this.conn.close();
  }

  /** The keys of one address of record, sharing a hash tag, and the AOR index. */
  private keys(aor: string): string[] {
    const base = `${this.conn.prefix}reg:{${aor}}`;
    return [`${base}:bindings`, `${base}:expiries`, this.aorIndex()];
  }

  private aorIndex(): string {
    return `${this.conn.prefix}reg:aors`;
  }

  private nowMs(): number {
    return Math.floor(this.conn.now());
  }
}

/** A binding as the scripts take it: its key, its JSON, its expiry (whole ms). */
function encode(binding: ContactBinding): [string, string, number] {
  const expires = Math.round(binding.expires);
  const stored: StoredBinding = {
    contact: binding.contact.toString(),
    expires,
    callId: binding.callId,
    cseq: binding.cseq,
  };
  if (binding.q !== undefined) stored.q = binding.q;
  if (binding.instanceId !== undefined) stored.instanceId = binding.instanceId;
  if (binding.regId !== undefined) stored.regId = binding.regId;
  if (binding.path !== undefined) stored.path = [...binding.path];
  return [bindingKey(binding), JSON.stringify(stored), expires];
}

/** HGETALL's flat answer as bindings, in a stable order (a hash has none): by Contact URI. */
function decodeAll(aor: string, flat: string[]): ContactBinding[] {
  const out: ContactBinding[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2)
    out.push(decode(aor, flat[i] as string, flat[i + 1] as string));
  return out.sort((a, b) => (bindingKey(a) < bindingKey(b) ? -1 : 1));
}

function decode(aor: string, key: string, json: string): ContactBinding {
  let s: StoredBinding;
  let contact: Contact | undefined;
  try {
    s = JSON.parse(json) as StoredBinding;
    contact = parseHeader<Contact>('Contact', s.contact)[0];
  } catch (e) {
    throw new RedisStoreError(
      'SIP_ERR_STORE_REDIS_DATA',
      `the binding ${key} of ${aor} cannot be read`,
      { cause: e },
    );
  }
  if (!contact || typeof s.expires !== 'number' || typeof s.callId !== 'string')
    throw new RedisStoreError(
      'SIP_ERR_STORE_REDIS_DATA',
      `the binding ${key} of ${aor} is not a binding`,
    );
  const b: ContactBinding = {
    aor,
    contact,
    expires: s.expires,
    callId: s.callId,
    cseq: Number(s.cseq),
  };
  if (s.q !== undefined) b.q = s.q;
  if (s.instanceId !== undefined) b.instanceId = s.instanceId;
  if (s.regId !== undefined) b.regId = s.regId;
  if (s.path !== undefined) b.path = s.path;
  return b;
}
