import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ClientInviteSession,
  type EndReason,
  type Handle,
  type InviteSession,
  type InviteSessionHandler,
  ServerAuthManager,
  type ServerInviteSession,
} from '@sipworks/dum';
import type { SipRequest } from '@sipworks/message';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { peerGate } from '../src/peer.ts';
import { freePort, type SippProcess, sippInfo, startSipp, waitForListen } from '../src/sipp.ts';
import { DumPool, pidf, sdp, type TestDum, waitUntil } from './support/dum.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const scenario = (name: string): string => path.join(here, '..', 'sipp', name);

const sipp = sippInfo();
const gate = peerGate('SIPp (sip-tester)', sipp, 'sip-tester');

const REALM = 'sipworks.test';
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Records an invite session's events as short strings; answers as told. */
class CallRecorder implements InviteSessionHandler {
  readonly events: string[] = [];
  offer = '';
  answer = '';
  ended: EndReason | undefined;
  /** How long the UAS rings before accepting; undefined: it never accepts. */
  answerAfterMs: number | undefined = 150;
  onNewSession(h: Handle<ServerInviteSession>): void {
    this.events.push('new');
    h.get().provisional(180);
  }
  onOffer(h: Handle<InviteSession>, _m: SipRequest | unknown, body: Uint8Array): void {
    this.events.push('offer');
    this.offer = text(body);
    const delay = this.answerAfterMs;
    if (delay === undefined) return;
    setTimeout(() => {
      const s = h.isValid() ? (h.get() as ServerInviteSession) : undefined;
      if (s?.state === 'proceeding') s.accept({ body: sdp('bob', 5004) });
    }, delay);
  }
  onAnswer(_h: Handle<InviteSession>, _m: unknown, body: Uint8Array): void {
    this.events.push('answer');
    this.answer = text(body);
  }
  onProvisional(_h: Handle<ClientInviteSession>, r: { status: number }): void {
    this.events.push(`provisional:${r.status}`);
  }
  onAckReceived(): void {
    this.events.push('ack');
  }
  onConnected(): void {
    this.events.push('connected');
  }
  onFailure(_h: Handle<ClientInviteSession>, r: { status: number }): void {
    this.events.push(`failure:${r.status}`);
  }
  onTerminated(_h: Handle<InviteSession>, reason: EndReason): void {
    this.events.push(`terminated:${reason}`);
    this.ended = reason;
  }
}

describe.skipIf(gate.skip)(
  `SIPp scenarios against DUM usages (${sipp.version || 'SIPp'})`,
  { timeout: 30_000 },
  () => {
    const pool = new DumPool();
    const running: SippProcess[] = [];
    beforeAll(() => gate.require());
    afterEach(async (ctx) => {
      const failed = ctx.task.result?.state === 'fail';
      const done = running.splice(0);
      await Promise.all(done.map((s) => s.stop()));
      for (const s of done) {
        if (failed) console.error(`[interop] SIPp traces\n${s.traces()}`);
        fs.rmSync(s.dir, { recursive: true, force: true });
      }
      await pool.stopAll();
    });

    /** Run one SIPp client scenario once against `dum` and check that its one call passed. */
    async function runClient(file: string, dum: TestDum, service: string, extra: string[] = []) {
      const proc = await startSipp({
        scenario: { file: scenario(file) },
        transport: 'u1',
        port: await freePort(),
        remote: `127.0.0.1:${dum.port}`,
        calls: 1,
        service,
        timeoutSeconds: 10,
        extra,
      });
      running.push(proc);
      const exit = await proc.wait(15_000);
      expect(exit.code, proc.traces()).toBe(0);
      expect(exit.stats?.successful, proc.traces()).toBe(1);
      expect(exit.stats?.failed, proc.traces()).toBe(0);
      return proc;
    }

    it('RFC 3261 §10.3 + §22.2: REGISTER challenged 401 by ServerAuthManager, then 200 with the binding stored', async () => {
      const registrar = await pool.start({ methods: ['REGISTER'] });
      const seen: string[] = [];
      registrar.dum.setServerRegistrationHandler({
        onAdd(h, req) {
          seen.push(`add:${req.header('Authorization') ? 'with-credentials' : 'bare'}`);
          h.get().accept();
        },
      });
      // SIPp computes MD5 digests only: offer MD5 alone.
      const auth = new ServerAuthManager(
        async (user, realm) =>
          user === 'alice' && realm === REALM ? { password: 'secret' } : undefined,
        { realm: REALM, algorithms: ['MD5'] },
      );
      registrar.dum.setServerAuthManager(auth, ['REGISTER']);
      await runClient('register-auth-uac.xml', registrar, 'alice', [
        '-au',
        'alice',
        '-ap',
        'secret',
      ]);
      // Only the authenticated REGISTER reached the handler.
      expect(seen).toEqual(['add:with-credentials']);
      const aor = `sip:alice@127.0.0.1:${registrar.port}`;
      const bindings = await registrar.dum.registrationPersistenceManager.getContacts(aor);
      expect(bindings).toHaveLength(1);
      expect(bindings[0]?.contact.uri.user).toBe('alice');
      expect(bindings[0]?.contact.uri.host).toBe('127.0.0.1');
      expect((bindings[0]?.expires ?? 0) - Date.now()).toBeGreaterThan(100_000);
    });

    it('RFC 3261 §22.2: REGISTER with a wrong password is challenged again and never stored', async () => {
      const registrar = await pool.start({ methods: ['REGISTER'] });
      let reached = 0;
      registrar.dum.setServerRegistrationHandler({ onAdd: () => void reached++ });
      registrar.dum.setServerAuthManager(
        new ServerAuthManager(async () => ({ password: 'secret' }), {
          realm: REALM,
          algorithms: ['MD5'],
        }),
        ['REGISTER'],
      );
      const proc = await startSipp({
        scenario: { file: scenario('register-auth-uac.xml') },
        transport: 'u1',
        port: await freePort(),
        remote: `127.0.0.1:${registrar.port}`,
        calls: 1,
        service: 'alice',
        timeoutSeconds: 10,
        extra: ['-au', 'alice', '-ap', 'not-the-password'],
      });
      running.push(proc);
      const exit = await proc.wait(15_000);
      // The second 401 is unexpected where the scenario waits for 200: the call fails.
      expect(exit.stats?.successful, proc.traces()).toBe(0);
      expect(exit.stats?.failed, proc.traces()).toBe(1);
      expect(reached).toBe(0);
      const aor = `sip:alice@127.0.0.1:${registrar.port}`;
      expect(await registrar.dum.registrationPersistenceManager.getContacts(aor)).toEqual([]);
    });

    it('RFC 6665 §4.2 + RFC 3856: SUBSCRIBE presence, NOTIFY active with PIDF, un-SUBSCRIBE, NOTIFY terminated', async () => {
      const notifier = await pool.start({ events: ['presence'] });
      const log: string[] = [];
      notifier.dum.addServerSubscriptionHandler('presence', {
        onNewSubscription(h, subscribe) {
          log.push(`new:${subscribe.header('Expires')}`);
          const s = h.get();
          s.accept(200);
          s.send(
            s.update(pidf(notifier.uri('alice'), 'open', 'at the desk'), 'application/pidf+xml'),
          );
        },
        onTerminated() {
          log.push('terminated');
        },
      });
      await runClient('subscribe-presence-uac.xml', notifier, 'alice');
      await waitUntil(() => log.includes('terminated'), 'the subscription to end');
      expect(log).toEqual(['new:60', 'terminated']);
    });

    it('RFC 3903 §4.1 + §4.3: PUBLISH presence answered with SIP-ETag, refresh by SIP-If-Match keeps the body', async () => {
      const server = await pool.start({ methods: ['PUBLISH'] });
      const log: Array<{ op: string; etag: string; body: string }> = [];
      server.dum.addServerPublicationHandler('presence', {
        onInitial(h, etag, publish) {
          log.push({ op: 'initial', etag, body: publish.bodyText });
          h.get().accept();
        },
        onRefresh(h, etag, publish) {
          log.push({ op: 'refresh', etag, body: publish.bodyText });
          h.get().accept();
        },
        onUpdate(h, etag) {
          log.push({ op: 'update', etag, body: '' });
          h.get().accept();
        },
      });
      const proc = await runClient('publish-uac.xml', server, 'alice');
      expect(log.map((e) => e.op)).toEqual(['initial', 'refresh']);
      expect(log[0]?.body).toContain('<basic>open</basic>');
      // The refresh named the entity tag the initial PUBLISH was answered with.
      const trace = fs.readFileSync(path.join(proc.dir, 'messages.log'), 'utf8');
      const first = /SIP-ETag:\s*(\S+)/i.exec(trace)?.[1];
      expect(first).toBeDefined();
      expect(trace).toMatch(new RegExp(`SIP-If-Match:\\s*${first}`, 'i'));
      const stored = await server.dum.publicationStore.find(
        `sip:alice@127.0.0.1:${server.port}`,
        'presence',
      );
      expect(stored).toHaveLength(1);
      expect(text(stored[0]?.body ?? new Uint8Array())).toContain('published by SIPp');
      expect(stored[0]?.etag).not.toBe(first);
    });

    it('RFC 3261 §13.3 + RFC 3264: SIPp UAC -> DUM UAS, INVITE/(100)/180/200/ACK then BYE from SIPp', async () => {
      const uas = await pool.start();
      const rec = new CallRecorder();
      uas.dum.setInviteSessionHandler(rec);
      await runClient('call-uac.xml', uas, 'bob');
      await waitUntil(() => rec.ended !== undefined, 'the session to end');
      expect(rec.events).toEqual(['new', 'offer', 'ack', 'connected', 'terminated:remote-bye']);
      expect(rec.offer).toMatch(/^m=audio \d+ RTP\/AVP 0/m);
    });

    it('RFC 3261 §13.2 + RFC 3264: DUM UAC -> SIPp UAS, INVITE with offer, answer in 200, ACK, BYE from the DUM', async () => {
      const uac = await pool.start();
      const rec = new CallRecorder();
      uac.dum.setInviteSessionHandler({
        ...bind(rec),
        onConnected(h) {
          rec.events.push('connected');
          setTimeout(() => h.isValid() && h.get().end(), 100);
        },
      });
      const port = await freePort();
      const proc = await startSipp({
        scenario: { file: scenario('call-uas.xml') },
        transport: 'u1',
        port,
        calls: 1,
        timeoutSeconds: 10,
      });
      running.push(proc);
      await waitForListen(port, 'udp', proc);
      const invite = uac.dum.makeInviteSession(
        `sip:service@127.0.0.1:${port}`,
        uac.profile('alice'),
        { body: sdp('alice', 4000) },
      );
      uac.dum.send(invite);
      await waitUntil(() => rec.ended !== undefined, 'the call to end');
      const exit = await proc.wait(15_000);
      expect(exit.code, proc.traces()).toBe(0);
      expect(exit.stats?.successful, proc.traces()).toBe(1);
      expect(rec.events).toEqual([
        'provisional:180',
        'answer',
        'connected',
        'terminated:local-bye',
      ]);
      expect(rec.answer).toMatch(/^o=sipp /m);
    });

    it('RFC 3261 §9.2: CANCEL from SIPp before the DUM answers gets 200, the INVITE 487, the session ends cancelled', async () => {
      const uas = await pool.start();
      const rec = new CallRecorder();
      rec.answerAfterMs = undefined;
      uas.dum.setInviteSessionHandler(rec);
      await runClient('cancel-uac.xml', uas, 'bob');
      await waitUntil(() => rec.ended !== undefined, 'the session to end');
      expect(rec.events).toEqual(['new', 'offer', 'terminated:cancelled']);
    });
  },
);

/** The recorder's callbacks bound to it, to spread into a handler that overrides some. */
function bind(rec: CallRecorder): InviteSessionHandler {
  return {
    onProvisional: rec.onProvisional.bind(rec),
    onAnswer: rec.onAnswer.bind(rec),
    onFailure: rec.onFailure.bind(rec),
    onTerminated: rec.onTerminated.bind(rec),
  };
}
