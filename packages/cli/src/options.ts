import { parseArgs } from 'node:util';
import { DIGEST_ALGORITHMS, type DigestAlgorithm } from '@sipworks/dum';
import { UsageError } from './errors.ts';
import { type ListenSpec, parseListen } from './listen.ts';
import type { TraceMode } from './wire.ts';

export const COMMANDS = [
  'options',
  'register',
  'message',
  'call',
  'subscribe',
  'publish',
  'refer',
  'serve',
  'demo',
  'help',
] as const;
export type Command = (typeof COMMANDS)[number];

export const USAGE = `Usage: sipworks COMMAND [ARGS] [OPTIONS]

Client commands:
  options URI                         send OPTIONS (a SIP ping)
  register AOR --registrar URI        register AOR (or --unregister) [--expires S] [--contact URI]
  message URI TEXT                    send a MESSAGE (RFC 3428)
  call URI [--duration S]             INVITE with an SDP offer, hold, then BYE
    --prack never|supported|required  100rel (RFC 3262; default supported)
    --session-expires S [--min-se S]  session timer (RFC 4028): refreshes every S/2 s
  subscribe URI --event E             SUBSCRIBE and print each NOTIFY [--duration S] [--expires S]
  publish URI --event presence --status open|closed   PUBLISH a PIDF document [--expires S]
  refer URI --to URI                  REFER outside a dialog (RFC 3515): ask URI to call --to;
                                      prints each NOTIFY (sipfrag); succeeds on a final 2xx
Server:
  serve                               registrar, presence server, relay (B2BUA) and endpoint
    --users FILE                      user:password lines: digest auth for every request outside a dialog
    --store memory|sqlite:PATH|redis://HOST:PORT[/DB][?prefix=P]
                                      where bindings are kept (default memory); redis: bindings and
                                      publications shared by every node on that Redis and prefix
    --realm REALM                     the digest realm (default sipworks)
    --digest ALG[,ALG...]             digest algorithms offered, in order: SHA-512-256, SHA-256, MD5 (default SHA-256,MD5)
    --quiet                           print only where it listens: no line per request, registration or call
    --answer auto|ring|busy           how calls to the server itself are answered (default auto)
    --answer-delay MS                 ring this long before answering (default 200)
    --early-media                     send 183 with SDP before the 200 (reliable when the caller has 100rel)
    --prack never|supported|required  reliable 180/183 to callers that support 100rel (default supported)
    --session-expires S [--min-se S]  session timers on, at this interval (RFC 4028)
    --max-transactions N              answer 503 + Retry-After past N live transactions (default 100000)
    --max-per-source N                ... or past N live transactions from one address (default no limit)
    --retry-after S                   the Retry-After of those 503s (default 5)
    --idle-timeout S                  close a TCP/TLS/WS connection idle this long (default 300)
    --first-message-timeout S         close a connection that sent no whole message this long (default 30)
    --message-timeout S               close a connection holding part of a message this long (default 30)
    --max-header-bytes N, --max-body-bytes N   close a connection sending more (default 65536, 1048576)
    --web HOST:PORT                   serve the softphone page here (needs a ws or wss listener)
  demo                                a server and three users on loopback: the whole flow, drawn

Common options:
  --listen PROTO:HOST:PORT   udp|tcp|tls|ws|wss; repeatable; port 0 picks a free one
                             (clients: udp:127.0.0.1:0; serve: udp and tcp on 127.0.0.1:5060)
  --transport udp|tcp|tls|ws send over this transport (adds ;transport= to the URIs)
  --proxy URI                send through this outbound proxy
  --user NAME --password PW  digest credentials (the user also names the From)
  --from URI                 the From address (default sip:USER@target-host)
  --cert FILE --key FILE     certificate and key (PEM) for tls and wss listeners
  --ca FILE                  trust these CA certificates (PEM) for the server's TLS certificate
  --insecure                 do not verify the server's TLS certificate
  --timeout SECONDS          give up after this long (default 10)
  --trace[=full]             draw a ladder diagram of the messages (full: print them too)
  --pcap FILE                write every message to a pcap file
  --json                     print one JSON object per line
  -h, --help                 this text

Exit status: 0 success, 1 the peer answered with a failure, 2 usage error,
3 timeout or transport error.`;

/** Everything the command line said. */
export interface CliOptions {
  command: Command;
  args: string[];
  listen: ListenSpec[];
  transport: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss' | undefined;
  proxy: string | undefined;
  user: string | undefined;
  password: string | undefined;
  from: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  ca: string | undefined;
  insecure: boolean;
  timeout: number;
  trace: TraceMode;
  pcap: string | undefined;
  json: boolean;
  registrar: string | undefined;
  expires: number | undefined;
  contact: string | undefined;
  unregister: boolean;
  duration: number | undefined;
  event: string | undefined;
  status: 'open' | 'closed' | undefined;
  users: string | undefined;
  store: string;
  realm: string;
  /** `--digest`: the algorithms the server challenges with, in order. */
  digest: DigestAlgorithm[] | undefined;
  /** `--quiet`: `serve` prints where it listens, and no line per request, registration or call. */
  quiet: boolean;
  answer: 'auto' | 'ring' | 'busy';
  answerDelay: number;
  earlyMedia: boolean;
  sessionExpires: number | undefined;
  prack: 'never' | 'supported' | 'required' | undefined;
  /** The smallest session interval accepted (the profile's minSE; 90 unless lowered). */
  minSE: number | undefined;
  /** `refer --to`: the Refer-To URI. */
  to: string | undefined;
  limits: Limits;
  /** `serve --web HOST:PORT`: where the softphone page is served. */
  web: { host: string; port: number } | undefined;
  help: boolean;
}

/** Limits a server holds a hostile or broken peer to; unset ones keep the stack's defaults. */
export interface Limits {
  /** The stack's `maxTransactions`. */
  maxTransactions?: number;
  /** The stack's `maxTransactionsPerSource`. */
  maxPerSource?: number;
  /** Retry-After seconds of the stack's overload 503. */
  retryAfter?: number;
  /** Stream transports: close a connection idle this long (ms). */
  idleTimeoutMs?: number;
  /** Stream transports: close a connection that sent no whole message this long after it was accepted (ms). */
  firstMessageTimeoutMs?: number;
  /** Stream transports: close a connection holding part of a message this long (ms). */
  messageTimeoutMs?: number;
  /** Stream transports: the largest header section. */
  maxHeaderBytes?: number;
  /** Stream transports: the largest body. */
  maxBodyBytes?: number;
}

function number(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min)
    throw new UsageError(`--${name} ${value}: expected a number of at least ${min}`);
  return n;
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`--${name} ${value}: expected one of ${allowed.join(', ')}`);
  return value as T;
}

/** `--digest SHA-256,MD5`: known algorithm names, case-insensitive, no repeats. */
function digestList(value: string | undefined): DigestAlgorithm[] | undefined {
  if (value === undefined) return undefined;
  const out: DigestAlgorithm[] = [];
  for (const raw of value.split(',')) {
    const name = raw.trim().toUpperCase();
    const alg = DIGEST_ALGORITHMS.find((a) => a === name);
    if (!alg)
      throw new UsageError(
        `--digest ${value}: '${raw.trim()}' is not one of ${DIGEST_ALGORITHMS.join(', ')}`,
      );
    if (!out.includes(alg)) out.push(alg);
  }
  return out;
}

/** Parse the command line (without `node` and the script). Throws `UsageError`. */
export function parseCommandLine(argv: string[]): CliOptions {
  let trace: TraceMode = 'off';
  const rest: string[] = [];
  for (const a of argv) {
    if (a === '--trace' || a === '--trace=ladder') trace = 'ladder';
    else if (a === '--trace=full') trace = 'full';
    else if (a.startsWith('--trace='))
      throw new UsageError(`${a}: expected --trace or --trace=full`);
    else rest.push(a);
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rest);
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\. To specify.*$/s, '')}`);
  }
  const v = parsed.values;
  const [command, ...args] = parsed.positionals;
  const help = v.help === true;
  if (command === undefined) {
    if (help) return defaults('help', [], trace);
    throw new UsageError(
      'no command given: name one of options, register, message, call, subscribe, publish, refer, serve, demo',
    );
  }
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new UsageError(`unknown command '${command}': use one of ${COMMANDS.join(', ')}`);
  const o = defaults(command as Command, args, trace);
  o.help = help;
  o.listen = (v.listen ?? []).map(parseListen);
  o.transport = oneOf('transport', v.transport, ['udp', 'tcp', 'tls', 'ws', 'wss'] as const);
  o.proxy = v.proxy;
  o.user = v.user;
  o.password = v.password;
  o.from = v.from;
  o.cert = v.cert;
  o.key = v.key;
  o.ca = v.ca;
  o.insecure = v.insecure === true;
  o.timeout = number('timeout', v.timeout, 0.1) ?? o.timeout;
  o.pcap = v.pcap;
  o.json = v.json === true;
  o.registrar = v.registrar;
  o.expires = number('expires', v.expires, 0);
  o.contact = v.contact;
  o.unregister = v.unregister === true;
  o.duration = number('duration', v.duration, 0);
  o.event = v.event;
  o.status = oneOf('status', v.status, ['open', 'closed'] as const);
  o.users = v.users;
  o.store = v.store ?? 'memory';
  o.realm = v.realm ?? 'sipworks';
  o.digest = digestList(v.digest);
  o.quiet = v.quiet === true;
  o.answer = oneOf('answer', v.answer, ['auto', 'ring', 'busy'] as const) ?? 'auto';
  o.answerDelay = number('answer-delay', v['answer-delay'], 0) ?? 200;
  o.earlyMedia = v['early-media'] === true;
  o.sessionExpires = number('session-expires', v['session-expires'], 1);
  o.minSE = number('min-se', v['min-se'], 1);
  o.prack = oneOf('prack', v.prack, ['never', 'supported', 'required'] as const);
  o.to = v.to;
  o.limits = limits(v);
  o.web = v.web === undefined ? undefined : parseWeb(v.web);
  if (o.web && o.command !== 'serve') throw new UsageError('--web goes with serve');
  if ((o.cert === undefined) !== (o.key === undefined))
    throw new UsageError('--cert and --key go together: give both PEM files');
  if (o.password !== undefined && o.user === undefined)
    throw new UsageError('--password needs --user NAME');
  if (!/^(memory|sqlite:.+|rediss?:\/\/.+)$/.test(o.store))
    throw new UsageError(
      `--store ${o.store}: expected memory, sqlite:PATH or redis://HOST:PORT[/DB][?prefix=P]`,
    );
  if (/^rediss?:/.test(o.store)) redisStore(o.store);
  return o;
}

/** Where `--store redis://...` points: the URL for ioredis, and the key prefix. */
export interface RedisStoreTarget {
  /** The URL without its `prefix` parameter (`redis://HOST:PORT/DB`). */
  url: string;
  /** The `prefix` parameter, or `sipworks:`. */
  prefix: string;
}

/**
 * Read `redis://HOST:PORT[/DB][?prefix=P]` (or `rediss://` for TLS). `prefix` is ours
 * and is taken out of the URL; host, port, database and credentials stay for ioredis.
 */
export function redisStore(spec: string): RedisStoreTarget {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new UsageError(`--store ${spec}: not a URL; expected redis://HOST:PORT[/DB][?prefix=P]`);
  }
  if (url.hostname === '')
    throw new UsageError(`--store ${spec}: no host; expected redis://HOST:PORT[/DB][?prefix=P]`);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db))
    throw new UsageError(
      `--store ${spec}: the database after the port must be a number, got '${db}'`,
    );
  const prefix = url.searchParams.get('prefix') ?? 'sipworks:';
  if (prefix === '') throw new UsageError(`--store ${spec}: prefix= must not be empty`);
  url.searchParams.delete('prefix');
  return { url: url.toString(), prefix };
}

function limits(v: ReturnType<typeof parse>['values']): Limits {
  const l: Limits = {};
  const set = (key: keyof Limits, name: string, min: number, scale = 1): void => {
    const n = number(name, v[name as keyof typeof v] as string | undefined, min);
    if (n !== undefined) l[key] = Math.round(n * scale);
  };
  set('maxTransactions', 'max-transactions', 1);
  set('maxPerSource', 'max-per-source', 1);
  set('retryAfter', 'retry-after', 0);
  set('idleTimeoutMs', 'idle-timeout', 0, 1000);
  set('firstMessageTimeoutMs', 'first-message-timeout', 0, 1000);
  set('messageTimeoutMs', 'message-timeout', 0, 1000);
  set('maxHeaderBytes', 'max-header-bytes', 256);
  set('maxBodyBytes', 'max-body-bytes', 0);
  return l;
}

function defaults(command: Command, args: string[], trace: TraceMode): CliOptions {
  return {
    command,
    args,
    listen: [],
    transport: undefined,
    proxy: undefined,
    user: undefined,
    password: undefined,
    from: undefined,
    cert: undefined,
    key: undefined,
    ca: undefined,
    insecure: false,
    timeout: 10,
    trace,
    pcap: undefined,
    json: false,
    registrar: undefined,
    expires: undefined,
    contact: undefined,
    unregister: false,
    duration: undefined,
    event: undefined,
    status: undefined,
    users: undefined,
    store: 'memory',
    realm: 'sipworks',
    digest: undefined,
    quiet: false,
    answer: 'auto',
    answerDelay: 200,
    earlyMedia: false,
    sessionExpires: undefined,
    prack: undefined,
    minSE: undefined,
    to: undefined,
    limits: {},
    web: undefined,
    help: false,
  };
}

/** `--web 127.0.0.1:8080`, `--web [::1]:0`. */
function parseWeb(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535)
    throw new UsageError(`--web ${value}: expected HOST:PORT (for example --web 127.0.0.1:8080)`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      listen: { type: 'string', multiple: true },
      transport: { type: 'string' },
      proxy: { type: 'string' },
      user: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      from: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
      insecure: { type: 'boolean' },
      timeout: { type: 'string', short: 't' },
      pcap: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      registrar: { type: 'string' },
      expires: { type: 'string' },
      contact: { type: 'string' },
      unregister: { type: 'boolean' },
      duration: { type: 'string' },
      event: { type: 'string' },
      status: { type: 'string' },
      users: { type: 'string' },
      store: { type: 'string' },
      realm: { type: 'string' },
      digest: { type: 'string' },
      quiet: { type: 'boolean' },
      answer: { type: 'string' },
      'answer-delay': { type: 'string' },
      'early-media': { type: 'boolean' },
      'session-expires': { type: 'string' },
      prack: { type: 'string' },
      'min-se': { type: 'string' },
      to: { type: 'string' },
      'max-transactions': { type: 'string' },
      'max-per-source': { type: 'string' },
      'retry-after': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'first-message-timeout': { type: 'string' },
      'message-timeout': { type: 'string' },
      'max-header-bytes': { type: 'string' },
      'max-body-bytes': { type: 'string' },
      web: { type: 'string' },
    },
  });
}
