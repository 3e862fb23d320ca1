import { createHash } from 'node:crypto';
import { type Logger, silentLogger } from '@sipworks/stack';
import { Redis, type RedisOptions } from 'ioredis';
import { RedisStoreError } from './errors.ts';

/** What every Redis store takes. */
export interface RedisStoreOptions {
  /**
   * Put before every key (default `sipworks:`), so that several deployments (or a
   * registrar and other applications) can share one Redis database.
   */
  prefix?: string;
  /**
   * Wall-clock time in ms since the epoch (default `Date.now`). Absolute expiries in the
   * stores are in this time; Redis's own key expiry runs on relative lifetimes, so a
   * skew between this clock and the Redis host's does not shorten a binding.
   */
  now?: () => number;
  /**
   * How long one store call may wait for Redis (ms, default 2,000). A call that takes
   * longer rejects with `SIP_ERR_STORE_REDIS_TIMEOUT`, so that a registrar answers 500
   * with Retry-After before the client's transaction times out (RFC 3261 §17.1.2.2,
   * Timer F: 32 s) instead of leaving it waiting.
   */
  timeoutMs?: number;
  /**
   * Where a store that made its own connection reports losing it and getting it back
   * (default: silent). The DUM logs each call that failed on its own logger.
   */
  logger?: Logger;
}

/**
 * The client options a store uses when it makes its own connection: a command is tried
 * once more after a reconnect at most, and then fails, rather than waiting in ioredis's
 * offline queue for as long as Redis is down.
 */
/**
 * ioredis options for a store's own client. `replyMapping` is left out: the stores read
 * replies in ioredis's default (legacy, RESP2-shaped) mapping.
 */
export type RedisClientOptions = Omit<RedisOptions, 'replyMapping'>;

export const STORE_CLIENT_DEFAULTS: RedisClientOptions = {
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
};

/** A client for `target` (a `redis://` URL, or ioredis options) with `STORE_CLIENT_DEFAULTS`. */
export function createClient(target: string | RedisClientOptions): Redis {
  return typeof target === 'string'
    ? new Redis(target, STORE_CLIENT_DEFAULTS)
    : new Redis({ ...STORE_CLIENT_DEFAULTS, ...target });
}

/**
 * A Lua script run with EVALSHA, loaded with EVAL when Redis does not know it yet (after
 * a restart or SCRIPT FLUSH). A script runs atomically: no other client's command runs
 * between its reads and writes.
 */
export class LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
  constructor(name: string, source: string) {
    this.name = name;
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * The part of every store that talks to Redis: the client (owned or borrowed), the key
 * prefix, the clock, and a bounded wait for each call.
 */
export class RedisConnection {
  readonly redis: Redis;
  readonly prefix: string;
  readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly owned: boolean;
  private closed = false;

  constructor(redis: Redis, options: RedisStoreOptions, owned: boolean) {
    this.redis = redis;
    this.owned = owned;
    this.prefix = options.prefix ?? 'sipworks:';
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    if (!(this.timeoutMs > 0))
      throw new RangeError(`timeoutMs must be positive: ${this.timeoutMs}`);
    if (owned) this.watch(options.logger ?? silentLogger);
  }

  /**
   * Report the connection's loss once, and its return, on the logger. A listener for
   * `error` is needed anyway: without one, ioredis prints every failed reconnect.
   */
  private watch(logger: Logger): void {
    let down = false;
    this.redis.on('error', (err: Error) => {
      if (down) return;
      down = true;
      logger.warn({ err }, 'Redis connection lost: store calls fail until it is back');
    });
    this.redis.on('ready', () => {
      if (!down) return;
      down = false;
      logger.info({}, 'Redis connection restored');
    });
  }

  /** Run `op` against Redis, failing with a `RedisStoreError` after `timeoutMs`. */
  async call<T>(what: string, op: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.closed)
      throw new RedisStoreError('SIP_ERR_STORE_REDIS_COMMAND', `${what}: the store is closed`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new RedisStoreError(
              'SIP_ERR_STORE_REDIS_TIMEOUT',
              `${what}: Redis did not answer within ${this.timeoutMs} ms (status ${this.redis.status})`,
            ),
          ),
        this.timeoutMs,
      );
      timer.unref();
    });
    try {
      return await Promise.race([op(this.redis), timeout]);
    } catch (e) {
      if (e instanceof RedisStoreError) throw e;
      if (e instanceof Error && e.message.startsWith('SIPWORKS_CSEQ'))
        throw new RedisStoreError(
          'SIP_ERR_STORE_REDIS_CSEQ',
          `${what}: ${e.message.slice('SIPWORKS_CSEQ '.length)} (RFC 3261 §10.3 step 7)`,
          { cause: e },
        );
      throw new RedisStoreError(
        'SIP_ERR_STORE_REDIS_COMMAND',
        `${what}: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Close the client when the store made it; a borrowed client stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.owned) return;
    // QUIT waits for the replies still due; without a connection there are none, and a
    // QUIT queued while ioredis reconnects would wait for Redis to come back.
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    try {
      await this.redis.quit();
    } catch {
      // The connection went away meanwhile: nothing is left to close.
      this.redis.disconnect();
    }
  }
}
