import dc from 'node:diagnostics_channel';
import {
  type ClientInviteSession,
  type ClientPublication,
  type ClientRegistration,
  type ClientSubscription,
  DialogUsageManager,
  type Handle,
  type InviteSession,
  ServerInviteSession,
  type UserProfile,
} from '@sipworks/dum';
import { CHANNELS, SipStack, type Transport, type TransportMessageEvent } from '@sipworks/stack';
import { EXIT, type ExitCode, UsageError } from './errors.ts';
import { Ladder } from './ladder.ts';
import { type ListenProtocol, makeTransport } from './listen.ts';
import type { CliOptions } from './options.ts';
import type { Output } from './output.ts';
import { PcapWriter } from './pcap.ts';
import { pidf } from './presence.ts';
import { makeAnswer, makeOffer, withDirection } from './sdp.ts';
import { configureServer } from './serve.ts';
import { hostPort, ladderMessage } from './wire.ts';

/** One demo user: a stack with one transport, a DUM, and what it saw. */
interface User {
  name: string;
  protocol: ListenProtocol;
  stack: SipStack;
  dum: DialogUsageManager;
  profile: UserProfile;
  /** The profile whose outbound proxy is the registrar. */
  regProfile: UserProfile;
  seen: string[];
  waiters: { what: string; resolve: () => void }[];
  /** The last call that came to this user. */
  call: Handle<InviteSession> | undefined;
}

/** The direction attribute of an SDP body (sendrecv when it has none). */
function direction(sdp: string): string {
  return /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m.exec(sdp)?.[1] ?? 'sendrecv';
}

const STEP_TIMEOUT_MS = 5000;

function saw(u: User, what: string): void {
  u.seen.push(what);
  for (const w of [...u.waiters])
    if (what.startsWith(w.what)) {
      u.waiters.splice(u.waiters.indexOf(w), 1);
      w.resolve();
    }
}

/** Resolves when `u` sees an event starting with `what` (or saw one already after `since`). */
function until(u: User, what: string, since = 0): Promise<void> {
  if (u.seen.slice(since).some((s) => s.startsWith(what))) return Promise.resolve();
  return new Promise((resolve) => u.waiters.push({ what, resolve }));
}

class StepTimeout extends Error {}

/**
 * `sipworks demo`: a server (registrar, presence, relay, B2BUA, digest auth) and three
 * users in one process on loopback, on free ports: alice over UDP, bob over TCP, carol
 * over WebSocket. They register, subscribe to each other's presence, publish, exchange
 * MESSAGEs through the server, alice calls bob through the server, puts him on hold
 * (re-INVITE) and transfers him to carol (REFER), bob hangs up, and everyone unregisters. The ladder of the whole flow is drawn as it happens.
 */
export async function runDemo(o: CliOptions, out: Output): Promise<ExitCode> {
  if (o.args.length > 0) throw new UsageError(`demo takes no arguments, got '${o.args[0]}'`);
  const names = new Map<string, string>();
  const ladder = new Ladder({
    colour: out.colour && !out.json,
    columnWidth: 22,
    columns: ['alice', 'server', 'bob', 'carol'],
  });
  const pcap = o.pcap ? new PcapWriter(o.pcap) : undefined;
  let messages = 0;
  const inFlight = new Map<string, string[]>();
  const onSend = (m: unknown) => {
    const e = m as TransportMessageEvent;
    pcap?.write(e.time, e.local, e.remote, e.bytes);
    const key = Buffer.from(e.bytes).toString('latin1');
    const q = inFlight.get(key) ?? [];
    q.push(names.get(hostPort(e.local)) ?? hostPort(e.local));
    inFlight.set(key, q);
  };
  const onReceive = (m: unknown) => {
    const e = m as TransportMessageEvent;
    const key = Buffer.from(e.bytes).toString('latin1');
    const q = inFlight.get(key);
    const from = q?.shift() ?? names.get(hostPort(e.remote)) ?? hostPort(e.remote);
    if (q && q.length === 0) inFlight.delete(key);
    const to = names.get(hostPort(e.local)) ?? hostPort(e.local);
    const lm = { ...ladderMessage(e), from, to };
    messages++;
    if (out.json) out.event('message', { from, to, label: lm.label, protocol: e.protocol });
    else for (const line of ladder.push(lm)) out.line(line);
    if (o.trace === 'full') {
      const text = new TextDecoder().decode(e.bytes).replace(/\r\n/g, '\n').trimEnd();
      for (const l of text.split('\n')) out.trace(`    ${l}`);
    }
  };
  dc.subscribe(CHANNELS.send, onSend);
  dc.subscribe(CHANNELS.receive, onReceive);

  const stacks: SipStack[] = [];
  const steps: { step: string; ok: boolean; ms: number }[] = [];
  const t0 = performance.now();
  try {
    // ---- the server ----
    const serverStack = new SipStack();
    stacks.push(serverStack);
    const serverTransports: Record<string, Transport> = {};
    for (const p of ['udp', 'tcp', 'ws'] as const) {
      const t = makeTransport({ protocol: p, host: '127.0.0.1', port: 0 }, {});
      await serverStack.addTransport(t);
      serverTransports[p] = t;
    }
    await serverStack.start();
    for (const t of Object.values(serverTransports)) names.set(hostPort(t.local), 'server');
    const serverDum = new DialogUsageManager({ stack: serverStack });
    const passwords = new Map([
      ['alice', 'alice-secret'],
      ['bob', 'bob-secret'],
      ['carol', 'carol-secret'],
    ]);
    configureServer(serverDum, Object.values(serverTransports), {
      users: passwords,
      realm: 'sipworks',
      answer: 'auto',
      answerDelayMs: 100,
      earlyMedia: false,
      log: () => {},
    });
    for (const t of Object.values(serverTransports))
      out.event(
        'listening',
        { who: 'server', transport: t.protocol.toLowerCase(), port: t.local.port },
        `server listens on ${t.protocol.toLowerCase()}:127.0.0.1:${t.local.port}`,
      );

    // ---- the users ----
    const serverUri = (p: ListenProtocol, user?: string) =>
      `sip:${user ? `${user}@` : ''}127.0.0.1:${serverTransports[p]?.local.port}${p === 'udp' ? '' : `;transport=${p}`}`;
    const makeUser = async (name: string, protocol: ListenProtocol): Promise<User> => {
      const stack = new SipStack();
      stacks.push(stack);
      const t = makeTransport({ protocol, host: '127.0.0.1', port: 0 }, {});
      await stack.addTransport(t);
      await stack.start();
      names.set(hostPort(t.local), name);
      const dum = new DialogUsageManager({ stack });
      const aor = `sip:${name}@127.0.0.1`;
      const creds = { realm: 'sipworks', username: name, password: passwords.get(name) as string };
      const profile = dum.makeUserProfile({ aor }).addCredentials(creds);
      const regProfile = dum
        .makeUserProfile({ aor, outboundProxy: serverUri(protocol) })
        .addCredentials(creds);
      const u: User = {
        name,
        protocol,
        stack,
        dum,
        profile,
        regProfile,
        seen: [],
        waiters: [],
        call: undefined,
      };
      dum.setClientRegistrationHandler({
        onSuccess: () => saw(u, 'registered'),
        onRemoved: () => saw(u, 'unregistered'),
        onFailure: (_h, r) => saw(u, `register-failed ${r.status}`),
        onRequestRetry: () => -1,
      });
      dum.addClientSubscriptionHandler('presence', {
        onUpdateActive: (_h, n) =>
          saw(u, `notify ${/<basic>(\w+)</.exec(new TextDecoder().decode(n.body))?.[1] ?? 'none'}`),
        onTerminated: () => saw(u, 'subscription-ended'),
        onRequestRetry: () => -1,
      });
      dum.addClientPublicationHandler('presence', {
        onSuccess: () => saw(u, 'published'),
        onRemove: () => saw(u, 'unpublished'),
        onFailure: (_h, r) => saw(u, `publish-failed ${r.status}`),
      });
      dum.setClientPagerMessageHandler({
        onSuccess: (_h, r) => saw(u, `message-delivered ${r.status}`),
        onFailure: (_h, r) => saw(u, `message-failed ${r.status}`),
      });
      dum.setServerPagerMessageHandler({
        onMessageArrived: (h, m) => {
          saw(u, `message-from ${m.from.uri.user}: ${new TextDecoder().decode(m.body)}`);
          h.get().accept();
        },
      });
      dum.setInviteSessionHandler({
        onNewSession: (h) => {
          saw(u, 'incoming-call');
          u.call = h;
          h.get().provisional(180);
        },
        onOffer: (h, _m, body) => {
          const s = h.get();
          const offer = new TextDecoder().decode(body);
          const answer = makeAnswer(offer, '127.0.0.1');
          if (s.isConnected) {
            // A re-INVITE: hold (sendonly, answered recvonly), or the transfer's new media.
            saw(u, `offer ${direction(offer)}`);
            s.provideAnswer(answer);
            return;
          }
          if (!(s instanceof ServerInviteSession)) return;
          setTimeout(
            () => h.isValid() && (h.get() as ServerInviteSession).accept({ body: answer }),
            100,
          );
        },
        onAnswer: (_h, _m, body) => saw(u, `answer ${direction(new TextDecoder().decode(body))}`),
        onProvisional: (_h, r) => saw(u, `provisional ${r.status}`),
        onConnected: () => saw(u, 'connected'),
        onFailure: (_h, r) => saw(u, `call-failed ${r.status}`),
        onReferAccepted: (_h, _sub, r) => saw(u, `refer-accepted ${r.status}`),
        onReferRejected: (_h, r) => saw(u, `refer-rejected ${r.status}`),
        onReferProgress: (_h, _sub, status) => saw(u, `refer-progress ${status?.status ?? '?'}`),
        onTerminated: (_h, reason) => saw(u, `call-ended ${reason}`),
      });
      return u;
    };
    const alice = await makeUser('alice', 'udp');
    const bob = await makeUser('bob', 'tcp');
    const carol = await makeUser('carol', 'ws');
    const users = [alice, bob, carol];

    const step = async (title: string, fn: () => Promise<void>) => {
      const start = performance.now();
      out.event('step', { step: title }, `\n== ${title}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          fn(),
          new Promise<never>((_r, reject) => {
            timer = setTimeout(
              () => reject(new StepTimeout(`${title}: nothing after ${STEP_TIMEOUT_MS} ms`)),
              STEP_TIMEOUT_MS,
            );
          }),
        ]);
        steps.push({ step: title, ok: true, ms: Math.round(performance.now() - start) });
      } catch (e) {
        steps.push({ step: title, ok: false, ms: Math.round(performance.now() - start) });
        throw e;
      } finally {
        clearTimeout(timer);
      }
    };

    const regs = new Map<User, Handle<ClientRegistration>>();
    await step('register (digest auth)', async () => {
      for (const u of users) {
        const since = u.seen.length;
        regs.set(
          u,
          u.dum.send<ClientRegistration>(
            u.dum.makeRegistration(undefined, u.regProfile, { expires: 300 }),
          ),
        );
        await until(u, 'registered', since);
      }
    });

    const subs: Handle<ClientSubscription>[] = [];
    await step('subscribe to presence', async () => {
      const a = alice.seen.length;
      const b = bob.seen.length;
      subs.push(
        alice.dum.send(
          alice.dum.makeSubscription(serverUri('udp', 'bob'), 'presence', alice.profile, {
            expires: 300,
          }),
        ),
      );
      subs.push(
        bob.dum.send(
          bob.dum.makeSubscription(serverUri('tcp', 'alice'), 'presence', bob.profile, {
            expires: 300,
          }),
        ),
      );
      await Promise.all([until(alice, 'notify', a), until(bob, 'notify', b)]);
    });

    const pubs: Handle<ClientPublication>[] = [];
    await step('publish presence (open)', async () => {
      const a = alice.seen.length;
      const b = bob.seen.length;
      pubs.push(
        alice.dum.send(
          alice.dum.makePublication(
            serverUri('udp', 'alice'),
            'presence',
            alice.profile,
            pidf('sip:alice@127.0.0.1', 'open'),
            'application/pidf+xml',
            { expires: 300 },
          ),
        ),
      );
      await Promise.all([until(alice, 'published', a), until(bob, 'notify open', b)]);
      const a2 = alice.seen.length;
      pubs.push(
        bob.dum.send(
          bob.dum.makePublication(
            serverUri('tcp', 'bob'),
            'presence',
            bob.profile,
            pidf('sip:bob@127.0.0.1', 'open'),
            'application/pidf+xml',
            { expires: 300 },
          ),
        ),
      );
      await until(alice, 'notify open', a2);
    });

    await step('MESSAGE relayed by the server', async () => {
      const a = alice.seen.length;
      const b = bob.seen.length;
      alice.dum
        .makePagerMessage(serverUri('udp', 'bob'), alice.profile)
        .get()
        .page('Hello Bob, alice here');
      await Promise.all([
        until(bob, 'message-from alice', b),
        until(alice, 'message-delivered', a),
      ]);
      const c = carol.seen.length;
      const b2 = bob.seen.length;
      carol.dum
        .makePagerMessage(serverUri('ws', 'bob'), carol.profile)
        .get()
        .page('Hi Bob, from carol over WebSocket');
      await Promise.all([
        until(bob, 'message-from carol', b2),
        until(carol, 'message-delivered', c),
      ]);
    });

    let call: Handle<ClientInviteSession> | undefined;
    const aliceOffer = makeOffer('127.0.0.1');
    await step('call alice -> bob through the server (B2BUA)', async () => {
      const a = alice.seen.length;
      const b = bob.seen.length;
      call = alice.dum.send<ClientInviteSession>(
        alice.dum.makeInviteSession(serverUri('udp', 'bob'), alice.profile, { body: aliceOffer }),
      );
      await Promise.all([until(alice, 'connected', a), until(bob, 'connected', b)]);
    });

    await step('hold: alice re-INVITEs with a=sendonly, bob answers a=recvonly', async () => {
      const a = alice.seen.length;
      const b = bob.seen.length;
      // RFC 3264 §8.4: the same session, its stream made sendonly; the server relays the
      // re-INVITE to bob's leg and bob's answer back (RFC 3261 §14).
      const session = (call as Handle<ClientInviteSession>).get();
      session.provideOffer(withDirection(aliceOffer, 'sendonly'));
      await Promise.all([until(bob, 'offer sendonly', b), until(alice, 'answer recvonly', a)]);
      await new Promise((r) => setTimeout(r, 50)); // alice's ACK
    });

    await step('transfer: alice REFERs bob to carol, then bob and carol hang up', async () => {
      const a = alice.seen.length;
      const b = bob.seen.length;
      const c = carol.seen.length;
      // RFC 3515 / RFC 5589 blind transfer: the server calls carol for bob, NOTIFYs alice
      // (100, 180, 200 in sipfrag), joins bob with carol (a re-INVITE off hold) and hangs
      // up on alice.
      (call as Handle<ClientInviteSession>).get().refer('sip:carol@127.0.0.1');
      await Promise.all([
        until(alice, 'refer-progress 200', a),
        until(alice, 'call-ended', a),
        until(carol, 'connected', c),
        until(bob, 'offer sendrecv', b),
      ]);
      // Bob talks with carol for a moment (the re-INVITE that joined them gets its ACK).
      await new Promise((r) => setTimeout(r, 200));
      const b2 = bob.seen.length;
      const c2 = carol.seen.length;
      bob.call?.get().end();
      await Promise.all([until(bob, 'call-ended', b2), until(carol, 'call-ended', c2)]);
      await new Promise((r) => setTimeout(r, 50)); // the 200 to each BYE
    });

    await step('unsubscribe and unregister', async () => {
      for (const s of subs) if (s.isValid()) s.get().end();
      await Promise.all([until(alice, 'subscription-ended'), until(bob, 'subscription-ended')]);
      const unpublished = [until(alice, 'unpublished'), until(bob, 'unpublished')];
      for (const p of pubs) if (p.isValid()) p.get().end();
      await Promise.all(unpublished);
      for (const u of users) {
        const since = u.seen.length;
        regs.get(u)?.get().removeMyBindings();
        await until(u, 'unregistered', since);
      }
    });
    await new Promise((r) => setTimeout(r, 50));
    const ms = Math.round(performance.now() - t0);
    out.event(
      'summary',
      { ok: true, messages, steps, elapsedMs: ms },
      summary(steps, messages, ms),
    );
    return EXIT.ok;
  } catch (e) {
    const ms = Math.round(performance.now() - t0);
    out.event(
      'summary',
      { ok: false, messages, steps, elapsedMs: ms },
      summary(steps, messages, ms),
    );
    out.error(
      `demo failed: ${(e as Error).message}; run it again with --trace=full to see every message`,
    );
    return e instanceof StepTimeout ? EXIT.timeout : EXIT.failure;
  } finally {
    dc.unsubscribe(CHANNELS.send, onSend);
    dc.unsubscribe(CHANNELS.receive, onReceive);
    pcap?.close();
    await Promise.all(stacks.map((s) => s.stop().catch(() => {})));
  }
}

function summary(
  steps: { step: string; ok: boolean; ms: number }[],
  messages: number,
  ms: number,
): string {
  const lines = ['', 'Summary'];
  for (const s of steps) lines.push(`  ${s.ok ? 'ok  ' : 'FAIL'} ${s.step} (${s.ms} ms)`);
  lines.push(`  ${messages} messages in ${ms} ms`);
  return lines.join('\n');
}
