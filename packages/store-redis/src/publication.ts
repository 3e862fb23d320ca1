import { randomBytes } from 'node:crypto';
import type { PublicationStore, PublishedState } from '@sipworks/dum';
import type { Redis } from 'ioredis';
import {
  createClient,
  LuaScript,
  type RedisClientOptions,
  RedisConnection,
  type RedisStoreOptions,
} from './client.ts';
import { RedisStoreError } from './errors.ts';

export interface RedisPublicationStoreOptions extends RedisStoreOptions {
  /**
   * How long a state stays in Redis after its expiry (ms, default 30,000), no longer
   * returned by `get` or `find`. Within it, the state agent whose timer fires can still
   * tell "expired here" (`remove` finds it: `onExpired`) from "replaced by another
   * agent" (`remove` does not). Make it longer than the clock skew between agents.
   */
  expiredGraceMs?: number;
}

/**
 * Store a new state. KEYS[1]: its key; KEYS[2]: the index of its resource and event.
 * ARGV[1]: entity tag; ARGV[2]: JSON; ARGV[3]: expiry (ms since the epoch); ARGV[4]:
 * now; ARGV[5]: the grace after expiry (ms). Index entries that expired are dropped, and
 * the index lives as long as its last state.
 */
const STORE = `
local now = tonumber(ARGV[4])
local grace = tonumber(ARGV[5])
local function store()
  redis.call('SET', KEYS[1], ARGV[2], 'PX', math.max(1, math.ceil(tonumber(ARGV[3]) - now + grace)))
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[2], math.max(1, math.ceil(tonumber(last[2]) - now + grace)))
end
`;

const PUT = new LuaScript('publication-put', `${STORE}\nstore()\nreturn 1`);

/**
 * Replace a state atomically: nothing happens (0) when the old one is gone or expired.
 * KEYS[3]: the old state's key; ARGV[6]: its entity tag.
 */
const SWAP = new LuaScript(
  'publication-swap',
  `${STORE}
local old = redis.call('GET', KEYS[3])
if not old then return 0 end
local ok, decoded = pcall(cjson.decode, old)
if not ok or type(decoded) ~= 'table' or tonumber(decoded.expiresAt) == nil then return 0 end
if tonumber(decoded.expiresAt) <= now then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[6])
store()
return 1`,
);

/** A state as kept in Redis (the body in base64). */
interface StoredState {
  aor: string;
  event: string;
  contentType: string;
  expiresAt: number;
  /** When the body last changed (ms); absent in states stored before it was kept. */
  modifiedAt?: number;
  body: string;
}

/**
 * Published event state (RFC 3903 §6) in Redis, shared by every DUM that uses the same
 * Redis and key prefix: a refresh, modify or removal may reach any of them, and the
 * state outlives a state agent's restart.
 *
 * Each state is one key (its JSON, body in base64) that Redis expires itself
 * (`PX`: the state's lifetime plus `expiredGraceMs`). A sorted set per resource and event
 * lists the entity tags by expiry, for `find`. Replacing a state is one Lua script that
 * checks the old one is still there and current, so of two agents refreshing the same
 * tag at once only one succeeds (the other answers 412).
 */
export class RedisPublicationStore implements PublicationStore {
  private readonly conn: RedisConnection;
  private readonly graceMs: number;

  /** A store on a client the application made (and closes); see `RedisRegistrationPersistence`. */
  constructor(redis: Redis, options: RedisPublicationStoreOptions = {}, owned = false) {
    this.conn = new RedisConnection(redis, options, owned);
    this.graceMs = options.expiredGraceMs ?? 30_000;
    if (!(this.graceMs >= 0))
      throw new RangeError(`expiredGraceMs must not be negative: ${this.graceMs}`);
  }

  /** A store on its own connection to `target`, closed by `close()`. */
  static connect(
    target: string | RedisClientOptions,
    options?: RedisPublicationStoreOptions,
  ): RedisPublicationStore {
    return new RedisPublicationStore(createClient(target), options, true);
  }

  /** The ioredis client. */
  get redis(): Redis {
    return this.conn.redis;
  }

  /** 128 random bits in hex: unique across every agent sharing the store. */
  newEtag(): string {
    return randomBytes(16).toString('hex');
  }

  async get(etag: string): Promise<PublishedState | undefined> {
    const json = await this.conn.call('get', (r) => r.get(this.stateKey(etag)));
    if (json === null) return undefined;
    const s = decode(etag, json);
    return s.expiresAt > this.conn.now() ? s : undefined;
  }

  async put(state: PublishedState, replaces?: string): Promise<boolean> {
    const now = Math.floor(this.conn.now());
    const expiresAt = Math.round(state.expiresAt);
    const stored: StoredState = {
      aor: state.aor,
      event: state.event,
      contentType: state.contentType,
      expiresAt,
      ...(state.modifiedAt !== undefined ? { modifiedAt: state.modifiedAt } : {}),
      body: Buffer.from(state.body).toString('base64'),
    };
    const keys = [this.stateKey(state.etag), this.indexKey(state.aor, state.event)];
    const args = [state.etag, JSON.stringify(stored), expiresAt, now, this.graceMs];
    const r = await this.conn.call('put', (redis) =>
      replaces === undefined
        ? PUT.run(redis, keys, args)
        : SWAP.run(redis, [...keys, this.stateKey(replaces)], [...args, replaces]),
    );
    return r === 1;
  }

  async remove(etag: string): Promise<boolean> {
    // The index entry goes when `find` next meets it, or with its score.
    const n = await this.conn.call('remove', (r) => r.del(this.stateKey(etag)));
    return n === 1;
  }

  async find(aor: string, event: string): Promise<PublishedState[]> {
    const now = Math.floor(this.conn.now());
    const index = this.indexKey(aor, event);
    const etags = await this.conn.call('find', (r) => r.zrangebyscore(index, `(${now}`, '+inf'));
    if (etags.length === 0) return [];
    const jsons = await this.conn.call('find', (r) => r.mget(etags.map((e) => this.stateKey(e))));
    const out: PublishedState[] = [];
    const gone: string[] = [];
    etags.forEach((etag, i) => {
      const json = jsons[i];
      if (json === null || json === undefined) gone.push(etag);
      else {
        const s = decode(etag, json);
        if (s.expiresAt > now) out.push(s);
      }
    });
    if (gone.length > 0) await this.conn.call('find', (r) => r.zrem(index, ...gone));
    return out;
  }

  /** Close the connection when `connect` made it. */
  close(): Promise<void> {
    return this.conn.close();
  }

  private stateKey(etag: string): string {
    return `${this.conn.prefix}pub:etag:${etag}`;
  }

  private indexKey(aor: string, event: string): string {
    return `${this.conn.prefix}pub:index:${event}:${aor}`;
  }
}

function decode(etag: string, json: string): PublishedState {
  let s: StoredState;
  try {
    s = JSON.parse(json) as StoredState;
  } catch (e) {
    throw new RedisStoreError('SIP_ERR_STORE_REDIS_DATA', `the state ${etag} cannot be read`, {
      cause: e,
    });
  }
  if (
    typeof s.aor !== 'string' ||
    typeof s.event !== 'string' ||
    typeof s.expiresAt !== 'number' ||
    typeof s.body !== 'string'
  )
    throw new RedisStoreError('SIP_ERR_STORE_REDIS_DATA', `the state ${etag} is not a publication`);
  return {
    etag,
    aor: s.aor,
    event: s.event,
    contentType: typeof s.contentType === 'string' ? s.contentType : '',
    expiresAt: s.expiresAt,
    modifiedAt: typeof s.modifiedAt === 'number' ? s.modifiedAt : undefined,
    body: new Uint8Array(Buffer.from(s.body, 'base64')),
  };
}
