import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  ClientPublication,
  ClientRegistration,
  ClientSubscription,
  EndReason,
  Handle,
  InviteSession,
  InviteSessionHandler,
  ServerInviteSession,
} from '@sipworks/dum';
import type { SipRequest, SipResponse } from '@sipworks/message';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type KamailioProcess,
  kamailioInfo,
  makeDbtextDatabase,
  PRESENCE_MODULES,
  REGISTRAR_MODULES,
  startKamailio,
} from '../src/kamailio.ts';
import { peerGate } from '../src/peer.ts';
import { freePort } from '../src/sipp.ts';
import { DumPool, pidf, sdp, type TestDum, WireLog, waitUntil } from './support/dum.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const config = (name: string): string => path.join(here, '..', 'kamailio', name);

const REALM = 'sipworks.test';
const USERNAME = 'bob';
const PASSWORD = 'builder';

const proxyInfo = kamailioInfo(undefined, REGISTRAR_MODULES);
const presenceInfo = kamailioInfo(undefined, PRESENCE_MODULES);
const proxyGate = peerGate('Kamailio proxy/registrar', proxyInfo, 'kamailio');
const presenceGate = peerGate(
  'Kamailio presence',
  presenceInfo,
  'kamailio kamailio-presence-modules',
);

/** One side of a call: records its events; the callee answers after a 180, the caller hangs up when told. */
class Party implements InviteSessionHandler {
  readonly events: string[] = [];
  invite: SipRequest | undefined;
  ok: SipResponse | undefined;
  ack: SipRequest | undefined;
  bye: SipRequest | undefined;
  failure: number | undefined;
  ended: EndReason | undefined;
  session: Handle<InviteSession> | undefined;
  /** Offers and answers of re-INVITEs and UPDATEs, as `offer:<method>:<a= direction>`. */
  readonly modifications: string[] = [];
  /** The last re-INVITE or UPDATE this party received. */
  modification: SipRequest | undefined;

  onNewSession(h: Handle<ServerInviteSession>, invite: SipRequest): void {
    this.events.push('new');
    this.invite = invite;
    this.session = h as unknown as Handle<InviteSession>;
    h.get().provisional(180);
    setTimeout(() => h.isValid() && h.get().accept({ body: sdp('callee', 5004) }), 50);
  }
  onConnected(h: Handle<InviteSession>, message: SipRequest | SipResponse): void {
    this.events.push('connected');
    this.session = h;
    if (!message.isRequest) this.ok = message as SipResponse;
  }
  onAckReceived(_h: Handle<ServerInviteSession>, ack: SipRequest): void {
    this.ack ??= ack;
  }
  /** An offer in a re-INVITE or UPDATE: answered with the opposite direction (RFC 3264 §6.1). */
  onOffer(h: Handle<InviteSession>, message: SipRequest | SipResponse, body: Uint8Array): void {
    const s = h.get();
    if (!s.isConnected || !message.isRequest) return;
    const req = message as SipRequest;
    const dir = direction(body);
    this.modification = req;
    this.modifications.push(`offer:${req.method}:${dir}`);
    const answer = dir === 'sendonly' ? 'recvonly' : 'sendrecv';
    s.provideAnswer(sdp('answerer', 5008).replace('a=sendrecv', `a=${answer}`));
  }
  onAnswer(_h: Handle<InviteSession>, message: SipRequest | SipResponse, body: Uint8Array): void {
    // The answer to the initial INVITE comes before onConnected: only later ones count.
    if (!this.events.includes('connected')) return;
    this.modifications.push(`answer:${message.cseq.method}:${direction(body)}`);
  }
  onFailure(_h: unknown, response: SipResponse): void {
    this.failure = response.status;
  }
  onTerminated(
    _h: Handle<InviteSession>,
    reason: EndReason,
    message?: SipRequest | SipResponse,
  ): void {
    this.events.push(`terminated:${reason}`);
    this.ended = reason;
    if (message?.isRequest && (message as SipRequest).method === 'BYE')
      this.bye = message as SipRequest;
  }
}

/** The a= direction attribute of an SDP body (RFC 3264 §5.1), sendrecv when absent. */
function direction(body: Uint8Array): string {
  return (
    /^a=(sendrecv|sendonly|recvonly|inactive)/m.exec(new TextDecoder().decode(body))?.[1] ??
    'sendrecv'
  );
}

/** A Record-Route naming the proxy at `port` with `;lr` (RFC 3261 §16.6 step 4). */
function recordRoute(port: number): RegExp {
  return new RegExp(`^<sip:127\\.0\\.0\\.1:${port};lr(;[^>]*)?>$`);
}

/** The `host:port` of the topmost Via of a request. */
function topVia(request: SipRequest): string {
  const via = request.headers('Via')[0] ?? '';
  return /SIP\/2\.0\/\S+\s+([^;\s]+)/.exec(via)?.[1] ?? '';
}

describe.skipIf(proxyGate.skip)(
  `Kamailio as record-routing proxy and registrar between DUMs (${proxyInfo.version || 'Kamailio'})`,
  { timeout: 20_000 },
  () => {
    const pool = new DumPool();
    const wire = new WireLog();
    let proxy: KamailioProcess | undefined;
    let proxyPort = 0;

    beforeAll(() => proxyGate.require());
    afterEach(async (ctx) => {
      if (ctx.task.result?.state === 'fail' && proxy) {
        console.error(`[interop] Kamailio\n${proxy.report()}`);
        console.error(
          `[interop] the DUMs' wire\n${wire.entries
            .map((e) => {
              const m = e.message;
              const line = m.isRequest
                ? `${m.method} ${m.cseq.seq}`
                : `${m.status} (${m.cseq.method} ${m.cseq.seq})`;
              return `${e.localPort} ${e.direction === 'send' ? '->' : '<-'} ${e.remotePort} ${line}`;
            })
            .join('\n')}`,
        );
      }
      wire.stop();
      await pool.stopAll();
      await proxy?.stop();
      proxy = undefined;
    });

    async function startProxy(): Promise<void> {
      proxyPort = await freePort();
      proxy = startKamailio({
        config: config('proxy-registrar.cfg'),
        port: proxyPort,
        modules: proxyInfo.modules,
        defines: { REALM, USERNAME, PASSWORD },
      });
      await proxy.ready(8000);
      wire.start();
    }

    async function caller(): Promise<{ a: TestDum; party: Party }> {
      const a = await pool.start();
      const party = new Party();
      a.dum.setInviteSessionHandler(party);
      return { a, party };
    }

    function aliceProfile(a: TestDum) {
      return a.dum.makeUserProfile({
        aor: `<sip:alice@${REALM}>`,
        outboundProxy: `sip:127.0.0.1:${proxyPort}`,
      });
    }

    it('RFC 3261 §16.6 + §12.1.2 + §16.12: call A -> Kamailio -> B, Record-Route learned by both; ACK, a re-INVITE (hold, §14), an UPDATE (RFC 3311) and BYE routed through Kamailio', async () => {
      await startProxy();
      const { a, party: callerParty } = await caller();
      const b = await pool.start();
      const callee = new Party();
      b.dum.setInviteSessionHandler(callee);

      const invite = a.dum.makeInviteSession(`sip:bob@127.0.0.1:${b.port}`, aliceProfile(a), {
        body: sdp('caller', 4000),
      });
      a.dum.send(invite);
      await waitUntil(
        () => callerParty.ok !== undefined && callee.ack !== undefined,
        'the call to connect',
      );

      // §16.6 step 4: the proxy put itself in the path (a loose-routing URI; Kamailio adds
      // the From tag as ftag); both ends see the same Record-Route.
      const rr = callee.invite?.headers('Record-Route') ?? [];
      expect(rr).toHaveLength(1);
      expect(rr[0]).toMatch(recordRoute(proxyPort));
      expect(callerParty.ok?.headers('Record-Route')).toEqual(rr);
      // The preloaded Route to the outbound proxy was consumed before relaying.
      expect(callee.invite?.headers('Route')).toEqual([]);
      expect(topVia(callee.invite as SipRequest)).toBe(`127.0.0.1:${proxyPort}`);
      // §12.2.1.1: the ACK goes by the route set, so it arrives with the proxy's Via.
      expect(topVia(callee.ack as SipRequest)).toBe(`127.0.0.1:${proxyPort}`);

      // RFC 3261 §14 + RFC 3264 §8.4: A holds B by a re-INVITE; RFC 3311 §5: B resumes by
      // an UPDATE. Both are sent by the route set and reach the other end through the proxy.
      callerParty.session
        ?.get()
        .provideOffer(sdp('caller', 4000).replace('a=sendrecv', 'a=sendonly'));
      await waitUntil(() => callerParty.modifications.length === 1, 'the re-INVITE answer');
      expect(callee.modifications).toEqual(['offer:INVITE:sendonly']);
      expect(callerParty.modifications).toEqual(['answer:INVITE:recvonly']);
      expect(topVia(callee.modification as SipRequest)).toBe(`127.0.0.1:${proxyPort}`);
      callee.session
        ?.get()
        .provideOffer(sdp('callee', 5004), 'application/sdp', { method: 'UPDATE' });
      await waitUntil(() => callee.modifications.length === 2, 'the UPDATE answer');
      expect(callerParty.modifications).toEqual([
        'answer:INVITE:recvonly',
        'offer:UPDATE:sendrecv',
      ]);
      expect(callee.modifications).toEqual(['offer:INVITE:sendonly', 'answer:UPDATE:sendrecv']);
      expect(topVia(callerParty.modification as SipRequest)).toBe(`127.0.0.1:${proxyPort}`);
      const reinvites = wire.requests(a.port, 'send', 'INVITE');
      expect(reinvites).toHaveLength(2);
      expect(reinvites[1]?.remotePort).toBe(proxyPort);
      expect(reinvites[1]?.message.headers('Route')).toEqual(rr);
      // §12.1.1: the callee's UPDATE follows its route set, the same single Record-Route.
      const updates = wire.requests(b.port, 'send', 'UPDATE');
      expect(updates).toHaveLength(1);
      expect(updates[0]?.remotePort).toBe(proxyPort);
      expect(updates[0]?.message.headers('Route')).toEqual(rr);
      // The re-INVITE's ACK went through the proxy too (§13.2.2.4 with the route set).
      expect(wire.requests(a.port, 'send', 'ACK').map((e) => e.remotePort)).toEqual([
        proxyPort,
        proxyPort,
      ]);
      expect(
        wire.statuses(a.port, 'INVITE').filter((st) => st === 200).length,
      ).toBeGreaterThanOrEqual(2);
      expect(wire.statuses(b.port, 'UPDATE')).toEqual([200]);
      expect(proxy?.log).toMatch(/in-dialog UPDATE \S+ routed by Route/);

      callerParty.session?.get().end();
      await waitUntil(
        () => callee.ended !== undefined && callerParty.ended !== undefined,
        'the BYE',
      );
      expect(callerParty.ended).toBe('local-bye');
      expect(callee.ended).toBe('remote-bye');
      // The caller sent the BYE to the proxy, with the learned Route; B got it from the proxy.
      const sent = wire.requests(a.port, 'send', 'BYE');
      expect(sent).toHaveLength(1);
      expect(sent[0]?.remotePort).toBe(proxyPort);
      expect(sent[0]?.message.headers('Route')).toEqual(rr);
      expect(sent[0]?.message.uri.toString()).toMatch(new RegExp(`^sip:127\\.0\\.0\\.1:${b.port}`));
      expect(topVia(callee.bye as SipRequest)).toBe(`127.0.0.1:${proxyPort}`);
      expect(callee.bye?.headers('Via')).toHaveLength(2);
      // The callee ends its session when the BYE arrives; its 200 may still be on the way.
      await waitUntil(() => wire.statuses(a.port, 'BYE').length > 0, 'the 200 to the BYE');
      expect(wire.statuses(a.port, 'BYE')).toEqual([200]);
      expect(proxy?.log).toMatch(/in-dialog BYE \S+ routed by Route/);
    });

    it('RFC 3261 §10.2 + §22.2 + §16.5: B registers to Kamailio (401 then 200), A calls the AOR, Kamailio finds B by lookup', async () => {
      await startProxy();
      const b = await pool.start();
      const callee = new Party();
      b.dum.setInviteSessionHandler(callee);
      const registered: SipResponse[] = [];
      b.dum.setClientRegistrationHandler({ onSuccess: (_h, res) => void registered.push(res) });
      const bob = b.dum
        .makeUserProfile({ aor: `<sip:bob@${REALM}>`, outboundProxy: `sip:127.0.0.1:${proxyPort}` })
        .addCredentials({ realm: REALM, username: USERNAME, password: PASSWORD });
      const registration = b.dum.send<ClientRegistration>(
        b.dum.makeRegistration(undefined, bob, { expires: 120 }),
      );
      await waitUntil(() => registered.length > 0, 'the registration');
      // §22.2: challenged once, then accepted with the binding.
      expect(wire.statuses(b.port, 'REGISTER')).toEqual([401, 200]);
      const contacts = registered[0]?.headers('Contact').join(', ') ?? '';
      expect(contacts).toContain(`sip:bob@127.0.0.1:${b.port}`);

      const { a, party: callerParty } = await caller();
      a.dum.send(
        a.dum.makeInviteSession(`sip:bob@${REALM}`, aliceProfile(a), { body: sdp('caller') }),
      );
      await waitUntil(
        () => callee.ack !== undefined && callerParty.ok !== undefined,
        'the call to connect',
      );
      // The location lookup rewrote the Request-URI to B's registered Contact.
      expect(callee.invite?.uri.toString()).toBe(`sip:bob@127.0.0.1:${b.port}`);
      expect(callee.invite?.to.uri.toString()).toBe(`sip:bob@${REALM}`);
      expect(callee.invite?.headers('Record-Route')[0]).toMatch(recordRoute(proxyPort));

      // This time the callee hangs up; its BYE follows the same route set back.
      callee.session?.get().end();
      await waitUntil(
        () => callerParty.ended !== undefined && callee.ended !== undefined,
        'the BYE',
      );
      expect(callee.ended).toBe('local-bye');
      expect(callerParty.ended).toBe('remote-bye');
      const sent = wire.requests(b.port, 'send', 'BYE');
      expect(sent[0]?.remotePort).toBe(proxyPort);
      expect(topVia(callerParty.bye as SipRequest)).toBe(`127.0.0.1:${proxyPort}`);
      registration.get().end();
    });

    it('RFC 3261 §16.5 + §21.4.5: a call to an AOR nobody registered gets 404 from Kamailio', async () => {
      await startProxy();
      const { a, party } = await caller();
      a.dum.send(
        a.dum.makeInviteSession(`sip:carol@${REALM}`, aliceProfile(a), { body: sdp('caller') }),
      );
      await waitUntil(() => party.ended !== undefined, 'the INVITE to fail');
      expect(party.failure).toBe(404);
      expect(party.ended).toBe('rejected');
    });
  },
);

describe.skipIf(presenceGate.skip)(
  `Kamailio as presence server between DUMs (${presenceInfo.version || 'Kamailio'}, db_text)`,
  { timeout: 20_000 },
  () => {
    const pool = new DumPool();
    const wire = new WireLog();
    let server: KamailioProcess | undefined;
    let dbDir: string | undefined;

    beforeAll(() => presenceGate.require());
    afterEach(async (ctx) => {
      if (ctx.task.result?.state === 'fail' && server)
        console.error(`[interop] Kamailio\n${server.report()}`);
      wire.stop();
      await pool.stopAll();
      await server?.stop();
      server = undefined;
      if (dbDir) fs.rmSync(dbDir, { recursive: true, force: true });
      dbDir = undefined;
    });

    it('RFC 3903 §4 + RFC 6665 §4.1 + RFC 3856: A PUBLISHes through Kamailio, C SUBSCRIBEs and gets NOTIFYs with the PIDF, then un-SUBSCRIBEs', async () => {
      const port = await freePort();
      dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-kamailio-db-'));
      const dbUrl = makeDbtextDatabase(dbDir, [
        'presentity',
        'active_watchers',
        'watchers',
        'xcap',
      ]);
      server = startKamailio({
        config: config('presence.cfg'),
        port,
        modules: presenceInfo.modules,
        defines: { DBURL: dbUrl, SERVER: `sip:127.0.0.1:${port}` },
      });
      await server.ready(8000);
      wire.start();
      const presentity = `sip:alice@${REALM}`;
      const outboundProxy = `sip:127.0.0.1:${port}`;

      const a = await pool.start({ methods: ['PUBLISH'] });
      const published: Array<{ status: number; etag: string | undefined }> = [];
      a.dum.addClientPublicationHandler('presence', {
        onSuccess: (h, res) => void published.push({ status: res.status, etag: h.get().etag }),
        onFailure: (_h, res) => void published.push({ status: res.status, etag: undefined }),
      });
      const alice = a.dum.makeUserProfile({ aor: `<${presentity}>`, outboundProxy });
      const publication = a.dum.send<ClientPublication>(
        a.dum.makePublication(
          presentity,
          'presence',
          alice,
          pidf(presentity, 'open', 'reachable'),
          'application/pidf+xml',
          { expires: 120 },
        ),
      );
      await waitUntil(() => published.length > 0, 'the PUBLISH to be answered');
      expect(published[0]?.status).toBe(200);
      expect(published[0]?.etag).toBeTruthy();

      const c = await pool.start({ methods: ['NOTIFY'] });
      const notifies: Array<{ state: string; body: string }> = [];
      let terminated = false;
      c.dum.addClientSubscriptionHandler('presence', {
        onUpdateActive: (_h, n) =>
          void notifies.push({ state: n.header('Subscription-State') ?? '', body: n.bodyText }),
        onUpdatePending: (_h, n) =>
          void notifies.push({ state: n.header('Subscription-State') ?? '', body: n.bodyText }),
        onTerminated: () => {
          terminated = true;
        },
      });
      const watcher = c.dum.makeUserProfile({ aor: `<sip:carol@${REALM}>`, outboundProxy });
      const subscription = c.dum.send<ClientSubscription>(
        c.dum.makeSubscription(presentity, 'presence', watcher, { expires: 120 }),
      );
      await waitUntil(
        () => notifies.some((n) => n.body.includes('reachable')),
        'a NOTIFY with the published PIDF',
      );
      const first = notifies.find((n) => n.body.includes('reachable'));
      expect(first?.state).toMatch(/^active/);
      expect(first?.body).toMatch(/<basic>open<\/basic>/);

      // A new state published by A reaches C in a new NOTIFY (RFC 3903 §4.4 modify).
      publication.get().update(pidf(presentity, 'closed', 'gone home'));
      await waitUntil(
        () => notifies.some((n) => n.body.includes('gone home')),
        'a NOTIFY with the new state',
      );
      expect(notifies.find((n) => n.body.includes('gone home'))?.body).toMatch(
        /<basic>closed<\/basic>/,
      );
      expect(published.map((p) => p.status)).toEqual([200, 200]);

      // The NOTIFYs came from Kamailio, not from A: the server holds the state.
      const notifySources = wire.requests(c.port, 'receive', 'NOTIFY').map((e) => e.remotePort);
      expect(notifySources.length).toBeGreaterThanOrEqual(2);
      expect(new Set(notifySources)).toEqual(new Set([port]));
      expect(wire.requests(a.port, 'receive', 'NOTIFY')).toEqual([]);

      subscription.get().end();
      await waitUntil(() => terminated, 'the subscription to end');
    });
  },
);
