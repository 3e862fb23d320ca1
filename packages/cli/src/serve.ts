import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type ClientPagerMessage,
  type ContactBinding,
  canonicalAor,
  type DialogUsageManager,
  type DigestAlgorithm,
  type Handle,
  ServerAuthManager,
  type ServerSubscription,
  SqliteRegistrationPersistence,
  type UserProfile,
} from '@sipworks/dum';
import type { SipRequest, SipResponse, Uri } from '@sipworks/message';
import type { Clock, Transport, TransportMessageEvent } from '@sipworks/stack';
import { relayProfile, ServerCalls } from './calls.ts';
import { CliError, EXIT, type ExitCode, UsageError } from './errors.ts';
import { formatTime } from './ladder.ts';
import { type CliOptions, redisStore } from './options.ts';
import type { Output } from './output.ts';
import { pidf } from './presence.ts';
import { startUa } from './ua.ts';
import { startWebServer, type WebServer } from './web.ts';
import { hostPort } from './wire.ts';

/** How the server behaves; the `serve` options, and what the demo sets. */
export interface ServerSettings {
  /** user -> password; digest auth for every request outside a dialog when given. */
  users?: Map<string, string> | undefined;
  realm: string;
  /**
   * The key of the digest nonces (random when not given). Every node behind one
   * dispatcher must have the same, so that a challenge one node sent can be answered to
   * another; `--store redis://` shares one through Redis.
   */
  nonceSecret?: string | undefined;
  /** The digest algorithms challenged with, in order (the DUM's default when undefined). */
  digest?: DigestAlgorithm[] | undefined;
  answer: 'auto' | 'ring' | 'busy';
  answerDelayMs: number;
  earlyMedia: boolean;
  /** What the server tells about what it does (one line each). */
  log: (line: string, fields: Record<string, unknown>) => void;
}

/** Read a `user:password` file (blank lines and `#` comments skipped). */
export function readUsers(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(
      `cannot read --users ${file}: ${(e as Error).message}; give a file of user:password lines`,
    );
  }
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new UsageError(`--users ${file} line ${i + 1}: expected user:password, got '${line}'`);
    users.set(line.slice(0, colon), line.slice(colon + 1));
  });
  if (users.size === 0)
    throw new UsageError(`--users ${file} names no user: add user:password lines`);
  return users;
}

/** `user@host`, the key under which presence and subscriptions are kept (port and scheme aside). */
function resourceKey(uri: Uri): string {
  return `${uri.user ?? ''}@${uri.host.toLowerCase()}`;
}

/** The state of one event package for one resource, as a NOTIFY body. */
function stateBody(
  event: string,
  uri: Uri,
  published: { body: Uint8Array; contentType: string } | undefined,
): { body: string | Uint8Array; contentType: string } {
  const entity = `sip:${uri.user ? `${uri.user}@` : ''}${uri.host}`;
  switch (event) {
    case 'presence':
      return published ?? { body: pidf(entity, 'closed'), contentType: 'application/pidf+xml' };
    case 'message-summary':
      // RFC 3842 §5.2: nothing is stored, so nothing waits.
      return {
        body: `Messages-Waiting: no\r\nMessage-Account: ${entity}\r\n`,
        contentType: 'application/simple-message-summary',
      };
    default:
      // RFC 4235: the full state of no dialogs.
      return {
        body: `<?xml version="1.0"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="${entity}"/>\n`,
        contentType: 'application/dialog-info+xml',
      };
  }
}

/**
 * Make `dum` a registrar, a presence server (PUBLISH, SUBSCRIBE/NOTIFY for presence,
 * message-summary and dialog), a relay for MESSAGE and a B2BUA for INVITE to registered
 * users, and an endpoint for everything else (OPTIONS, MESSAGE, INVITE answered with
 * 180 then 200). REFERs, in a call or outside one, are performed (`ServerCalls`).
 */
export function configureServer(
  dum: DialogUsageManager,
  transports: Transport[],
  s: ServerSettings,
): void {
  if (s.users) {
    const users = s.users;
    dum.setServerAuthManager(
      new ServerAuthManager(
        async (username) => {
          const password = users.get(username);
          return password === undefined ? undefined : { password };
        },
        {
          realm: s.realm,
          ...(s.nonceSecret !== undefined ? { secret: s.nonceSecret } : {}),
          ...(s.digest ? { algorithms: s.digest } : {}),
        },
      ),
    );
  }
  dum.setServerRegistrationHandler({
    onAdd: (h, req) => {
      s.log(`registered ${req.to.uri} at ${req.contacts.map((c) => c.uri.toString()).join(', ')}`, {
        aor: req.to.uri.toString(),
      });
      void h.get().accept();
    },
    onRemove: (h, req) => {
      s.log(`unregistered ${req.to.uri}`, { aor: req.to.uri.toString() });
      void h.get().accept();
    },
    onRemoveAll: (h, req) => {
      s.log(`unregistered ${req.to.uri} (all bindings)`, { aor: req.to.uri.toString() });
      void h.get().accept();
    },
  });

  const store = dum.registrationPersistenceManager;
  const ownAddresses = new Set(transports.map((t) => hostPort(t.local)));
  /** The contacts registered for the user a request is addressed to, ours excluded. */
  const contactsOf = async (uri: Uri): Promise<ContactBinding[]> => {
    let found = await store.getContacts(canonicalAor(uri));
    if (found.length === 0 && uri.user) {
      // The same user registered under another host spelling or port (localhost, 127.0.0.1...).
      for (const aor of await store.aors()) {
        if (aor.replace(/^sips?:/, '').split('@')[0] === uri.user)
          found = found.concat(await store.getContacts(aor));
      }
    }
    return found.filter((b) => {
      const c = b.contact.uri;
      return !ownAddresses.has(
        hostPort({ address: c.host.replace(/^\[|\]$/g, ''), port: c.port ?? 5060 }),
      );
    });
  };

  // ---- presence ----
  const published = new Map<string, { body: Uint8Array; contentType: string; etag: string }>();
  const watchers = new Map<string, Set<Handle<ServerSubscription>>>();
  const notifyAll = (key: string) => {
    for (const h of watchers.get(key) ?? []) {
      if (!h.isValid()) continue;
      const sub = h.get();
      // A subscription being ended has had its final NOTIFY (RFC 6665 §4.2.2).
      if (sub.event !== 'presence' || sub.state === 'terminated') continue;
      const st = stateBody('presence', sub.subscribe.uri, published.get(key));
      sub.send(sub.update(st.body, st.contentType));
    }
  };
  const onPublish =
    (remove: boolean) =>
    (h: Handle<import('@sipworks/dum').ServerPublication>, etag: string, publish: SipRequest) => {
      h.get().accept();
      const key = resourceKey(publish.uri);
      if (remove) published.delete(key);
      else if (publish.body.length > 0)
        published.set(key, {
          body: publish.body,
          contentType: publish.header('Content-Type') ?? 'application/pidf+xml',
          etag,
        });
      s.log(`${remove ? 'unpublished' : 'published'} presence of ${key}`, { resource: key });
      notifyAll(key);
    };
  dum.addServerPublicationHandler('presence', {
    onInitial: onPublish(false),
    onUpdate: onPublish(false),
    onRemoved: onPublish(true),
    onExpired: (_h, etag) => {
      for (const [key, p] of published)
        if (p.etag === etag) {
          published.delete(key);
          notifyAll(key);
        }
    },
  });
  for (const event of ['presence', 'message-summary', 'dialog']) {
    const forget = (h: Handle<ServerSubscription>) => {
      for (const set of watchers.values()) set.delete(h);
    };
    dum.addServerSubscriptionHandler(event, {
      onNewSubscription: (h, subscribe) => {
        const sub = h.get();
        const key = resourceKey(subscribe.uri);
        sub.accept(200);
        sub.setSubscriptionState('active');
        const st = stateBody(event, subscribe.uri, published.get(key));
        sub.send(sub.update(st.body, st.contentType));
        let set = watchers.get(key);
        if (!set) watchers.set(key, (set = new Set()));
        set.add(h);
        s.log(`${subscribe.from.uri} subscribed to ${event} of ${key}`, { event, resource: key });
      },
      onTerminated: forget,
      onExpired: forget,
    });
  }

  // ---- MESSAGE: relay to a registered user, else take it ----
  const pagerCallbacks = new Map<number, (res: SipResponse) => void>();
  dum.setClientPagerMessageHandler({
    onSuccess: (h, res) => pagerCallbacks.get(h.id)?.(res),
    onFailure: (h, res) => pagerCallbacks.get(h.id)?.(res),
  });
  dum.setServerPagerMessageHandler({
    onMessageArrived: (h, msg) => {
      const text = new TextDecoder().decode(msg.body);
      contactsOf(msg.uri)
        .then((contacts) => {
          if (!h.isValid()) return;
          if (contacts.length === 0) {
            s.log(`MESSAGE from ${msg.from.uri}: ${text}`, { from: msg.from.uri.toString(), text });
            h.get().accept();
            return;
          }
          return relayMessage(dum, msg, contacts, pagerCallbacks).then((res) => {
            if (!h.isValid()) return;
            s.log(`relayed MESSAGE ${msg.from.uri} -> ${msg.uri}: ${res.status} ${res.reason}`, {
              status: res.status,
            });
            if (res.status < 300) h.get().accept(res.status);
            else h.get().reject(res.status, res.reason);
          });
        })
        .catch((e: unknown) => {
          s.log(`MESSAGE from ${msg.from.uri} failed: ${(e as Error).message}`, {});
          if (h.isValid()) h.get().reject(500);
        });
    },
  });

  // ---- INVITE and REFER: bridge to a registered user, else answer as an endpoint ----
  const local = transports[0]?.local.address ?? '127.0.0.1';
  new ServerCalls(dum, {
    answer: s.answer,
    answerDelayMs: s.answerDelayMs,
    earlyMedia: s.earlyMedia,
    mediaAddress: local === '0.0.0.0' || local === '::' ? '127.0.0.1' : local,
    contactsOf,
    log: s.log,
  }).install();
}

/**
 * The profile a relayed request to `binding` is sent with: the original From (without
 * its tag), and the binding's Path as the preloaded route set. RFC 3327 §5.3: a request
 * for a contact registered with Path goes through the proxies the Path names, so that
 * it reaches the UA the way its REGISTER came (through the edge proxy or the dispatcher
 * in front of this node, which may be the only one that can reach it).
 */
/** The profile a request relayed for `original` goes out with: its From as identity, the binding's Path as route. */
function relayProfileFor(
  dum: DialogUsageManager,
  original: SipRequest,
  binding: ContactBinding,
): UserProfile {
  const from = original.from.clone();
  from.params.delete('tag');
  return relayProfile(dum, from, binding);
}

/** Send a new MESSAGE (from the server, with the original From) to each contact; the best final response wins. */
function relayMessage(
  dum: DialogUsageManager,
  msg: SipRequest,
  contacts: ContactBinding[],
  callbacks: Map<number, (res: SipResponse) => void>,
): Promise<SipResponse> {
  const ct = msg.header('Content-Type') ?? 'text/plain';
  return Promise.all(
    contacts.map(
      (c) =>
        new Promise<SipResponse>((resolve) => {
          const pager: Handle<ClientPagerMessage> = dum.makePagerMessage(
            c.contact.uri,
            relayProfileFor(dum, msg, c),
          );
          callbacks.set(pager.id, (res) => {
            callbacks.delete(pager.id);
            if (pager.isValid()) pager.get().end();
            resolve(res);
          });
          pager.get().page(msg.body, ct);
        }),
    ),
  ).then(
    (all) =>
      // A 2xx from any contact delivers it; otherwise the lowest failure is the best answer
      // (RFC 3261 §16.7 picks the best of the forks' responses the same way).
      all.find((r) => r.status < 300) ??
      all.reduce((best, r) => (r.status < best.status ? r : best)),
  );
}

/** `sipworks serve`: run until SIGINT or SIGTERM. */
export async function runServe(o: CliOptions, out: Output): Promise<ExitCode> {
  if (o.args.length > 0) throw new UsageError(`serve takes no arguments, got '${o.args[0]}'`);
  const users = o.users ? readUsers(o.users) : undefined;
  const ua = await startUa(
    o,
    out,
    [
      { protocol: 'udp', host: '127.0.0.1', port: 5060 },
      { protocol: 'tcp', host: '127.0.0.1', port: 5060 },
    ],
    [],
    {
      onlyWhenObserved: true,
      ...(o.quiet ? {} : { onRequest: (e: TransportMessageEvent) => logRequest(out, e) }),
    },
  );
  const { dum, stack, transports, wire } = ua;
  let closeStore: () => Promise<void> = async () => {};
  try {
    const store = await openStore(o.store, dum, stack.clock);
    closeStore = store.close;
    configureServer(dum, transports, {
      users,
      realm: o.realm,
      nonceSecret: store.nonceSecret,
      digest: o.digest,
      answer: o.answer,
      answerDelayMs: o.answerDelay,
      earlyMedia: o.earlyMedia,
      log: o.quiet
        ? () => {}
        : (line, fields) =>
            out.event('log', { message: line, ...fields }, `${formatTime(Date.now())} ${line}`),
    });
  } catch (e) {
    wire.stop();
    await stack.stop();
    await closeStore();
    throw e;
  }
  for (const t of transports) {
    const a = t.local;
    out.event(
      'listening',
      { transport: t.protocol.toLowerCase(), address: a.address, port: a.port },
      `listening on ${t.protocol.toLowerCase()}:${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    );
  }
  let web: WebServer | undefined;
  if (o.web) {
    try {
      web = await startWebServer({
        ...o.web,
        transports,
        realm: o.realm,
        users: users ? [...users.keys()] : [],
      });
    } catch (e) {
      wire.stop();
      await stack.stop();
      throw e;
    }
    out.event('web', { url: web.url }, `softphone page at ${web.url}`);
  }
  out.line(
    `registrar, presence and relay ready${users ? ` (digest auth, realm ${o.realm}, ${users.size} users${o.digest ? `, ${o.digest.join(', ')}` : ''})` : ''}; Ctrl-C stops`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  out.event('stopping', {}, 'stopping');
  await web?.close();
  await dum.shutdown({ timeoutMs: 2000 });
  wire.stop();
  await stack.stop();
  await closeStore();
  out.event('stopped', {}, 'stopped');
  return EXIT.ok;
}

/** What `openStore` set up: how to close it, and the digest nonce key it shares. */
interface OpenedStore {
  close: () => Promise<void>;
  nonceSecret?: string | undefined;
}

/**
 * Give `dum` the registrar store `--store` names (memory needs nothing). `redis://` puts
 * the bindings and the published event state in Redis (@sipworks/store-redis, loaded
 * only then), so that every `serve` on the same Redis and prefix answers for the same
 * users: the nodes behind one dispatcher (docs/scale-out.md). They share the key of
 * their digest nonces through Redis too (`<prefix>auth:nonce-secret`, set by the first
 * node), so that a challenge answered to another node than the one that sent it passes.
 */
async function openStore(
  spec: string,
  dum: DialogUsageManager,
  clock: Clock,
): Promise<OpenedStore> {
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    let sqlite: SqliteRegistrationPersistence;
    try {
      sqlite = await SqliteRegistrationPersistence.open(path, { clock });
    } catch (e) {
      throw new CliError(
        `cannot open the SQLite store ${path}: ${(e as Error).message}; install better-sqlite3 (npm install better-sqlite3@12) and check the path`,
      );
    }
    dum.setRegistrationPersistenceManager(sqlite);
    return { close: async () => sqlite.close() };
  }
  if (!/^rediss?:/.test(spec)) return { close: async () => {} };
  const { url, prefix } = redisStore(spec);
  const { RedisPublicationStore, RedisRegistrationPersistence } = await import(
    '@sipworks/store-redis'
  );
  const options = { prefix, now: () => dum.now() };
  const bindings = RedisRegistrationPersistence.connect(url, options);
  const publications = RedisPublicationStore.connect(url, options);
  const close = async () => {
    await Promise.all([bindings.close(), publications.close()]);
  };
  const secretKey = `${prefix}auth:nonce-secret`;
  let nonceSecret: string | null;
  try {
    // A read now (bounded by the store's timeout), so that an unreachable Redis stops the
    // server at start, not at the first REGISTER.
    await bindings.aors();
    // The first node sets the nonce key; the others, and the same node restarted, read it.
    await bindings.redis.set(secretKey, randomBytes(32).toString('hex'), 'NX');
    nonceSecret = await bindings.redis.get(secretKey);
    if (nonceSecret === null || nonceSecret.length < 16)
      throw new Error(`${secretKey} holds no usable key`);
  } catch (e) {
    await close();
    throw new CliError(
      `cannot reach the Redis store ${redacted(url)}: ${(e as Error).message}; start redis-server there or fix --store`,
    );
  }
  dum.setRegistrationPersistenceManager(bindings);
  dum.setPublicationStore(publications);
  return { close, nonceSecret };
}

/** A Redis URL as it can be printed: its password, if any, replaced by `***`. */
function redacted(url: string): string {
  const u = new URL(url);
  if (u.password !== '') u.password = '***';
  return u.toString();
}

function logRequest(out: Output, e: TransportMessageEvent): void {
  const r = e.message as SipRequest;
  if (r.method === 'ACK') return;
  out.event(
    'request',
    {
      method: r.method,
      uri: r.uri.toString(),
      from: r.from.uri.toString(),
      protocol: e.protocol,
      source: hostPort(e.remote),
    },
    `${formatTime(e.time)} ${r.method} ${r.uri} from ${r.from.uri} (${e.protocol.toLowerCase()} ${hostPort(e.remote)})`,
  );
}
