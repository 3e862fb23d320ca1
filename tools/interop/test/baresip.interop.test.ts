import {
  type EndReason,
  type Handle,
  type InviteSession,
  type InviteSessionHandler,
  ServerAuthManager,
  type ServerInviteSession,
} from '@sipworks/dum';
import type { SipRequest, SipResponse } from '@sipworks/message';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BaresipProcess, baresipInfo, startBaresip } from '../src/baresip.ts';
import { peerGate } from '../src/peer.ts';
import { freePort } from '../src/sipp.ts';
import { DumPool, sdp, WireLog, waitUntil } from './support/dum.ts';

const info = baresipInfo();
const gate = peerGate('baresip', info, 'baresip');

const REALM = 'sipworks.test';
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A DUM side of a call with baresip: records the offer/answer and how it ended. */
class DumParty implements InviteSessionHandler {
  readonly events: string[] = [];
  invite: SipRequest | undefined;
  offer = '';
  answer = '';
  /** Every answer received, the INVITE's first, then those to re-INVITEs. */
  readonly answers: string[] = [];
  /** re-INVITEs of ours that were refused (`onOfferRejected`), by status. */
  readonly rejected: number[] = [];
  ended: EndReason | undefined;
  session: Handle<InviteSession> | undefined;

  onNewSession(h: Handle<ServerInviteSession>, invite: SipRequest): void {
    this.events.push('new');
    this.invite = invite;
    h.get().provisional(180);
  }
  onOffer(h: Handle<InviteSession>, _m: SipRequest | SipResponse, body: Uint8Array): void {
    this.events.push('offer');
    this.offer = text(body);
    setTimeout(() => {
      const s = h.isValid() ? (h.get() as ServerInviteSession) : undefined;
      if (s?.state === 'proceeding') s.accept({ body: sdp('dum', 4010) });
    }, 100);
  }
  onAnswer(_h: Handle<InviteSession>, _m: SipRequest | SipResponse, body: Uint8Array): void {
    this.events.push('answer');
    this.answer = text(body);
    this.answers.push(this.answer);
  }
  onOfferRejected(_h: Handle<InviteSession>, response?: SipResponse): void {
    this.rejected.push(response?.status ?? 0);
  }
  onConnected(h: Handle<InviteSession>): void {
    this.events.push('connected');
    this.session = h;
  }
  onTerminated(_h: Handle<InviteSession>, reason: EndReason): void {
    this.events.push(`terminated:${reason}`);
    this.ended = reason;
  }
}

describe.skipIf(gate.skip)(
  `baresip against DUMs (${info.version || 'baresip'})`,
  { timeout: 20_000 },
  () => {
    const pool = new DumPool();
    const wire = new WireLog();
    let baresip: BaresipProcess | undefined;

    beforeAll(() => gate.require());
    afterEach(async (ctx) => {
      if (ctx.task.result?.state === 'fail' && baresip)
        console.error(`[interop] baresip\n${baresip.report()}`);
      wire.stop();
      await baresip?.stop();
      baresip = undefined;
      await pool.stopAll();
    });

    async function startPeer(account: string): Promise<BaresipProcess> {
      const port = await freePort();
      baresip = startBaresip({ port, account, modules: info.modules });
      await baresip.ready();
      return baresip;
    }

    it('RFC 3261 §13 + RFC 3264: baresip calls a DUM UAS, SDP offer/answer, baresip hangs up (BYE from baresip)', async () => {
      const uas = await pool.start();
      const party = new DumParty();
      uas.dum.setInviteSessionHandler(party);
      const peer = await startPeer(`<sip:carol@127.0.0.1>;regint=0`);
      peer.command(`/dial sip:bob@127.0.0.1:${uas.port}`);
      await waitUntil(() => party.events.includes('connected'), 'the call to connect');
      await peer.waitFor(/established/i);
      expect(party.offer).toMatch(/^m=audio \d+ RTP\/AVP/m);
      peer.command('/hangup');
      await waitUntil(() => party.ended !== undefined, 'the BYE from baresip');
      expect(party.events).toEqual(['new', 'offer', 'connected', 'terminated:remote-bye']);
    });

    it('RFC 3261 §10.2 + §22.2: baresip registers to a DUM registrar, challenged 401 by ServerAuthManager, then 200', async () => {
      const registrar = await pool.start({ methods: ['REGISTER'] });
      wire.start();
      const added: SipRequest[] = [];
      registrar.dum.setServerRegistrationHandler({
        onAdd(h, req) {
          added.push(req);
          h.get().accept();
        },
      });
      registrar.dum.setServerAuthManager(
        new ServerAuthManager(
          async (user, realm) =>
            user === 'carol' && realm === REALM ? { password: 'secret' } : undefined,
          // baresip 1.0 (libre) answers a 401 that offers SHA-256 first with "Function not
          // implemented" instead of taking the MD5 challenge beside it (RFC 8760 §2.4): offer MD5.
          { realm: REALM, algorithms: ['MD5'] },
        ),
        ['REGISTER'],
      );
      const peer = await startPeer(
        `<sip:carol@127.0.0.1:${registrar.port}>;auth_user=carol;auth_pass=secret;regint=60`,
      );
      await waitUntil(() => added.length > 0, 'an authenticated REGISTER');
      await peer.waitFor(/200 OK/);
      const registers = wire.requests(registrar.port, 'receive', 'REGISTER');
      expect(registers.length).toBeGreaterThanOrEqual(2);
      expect(registers[0]?.message.headers('Authorization')).toEqual([]);
      expect(added[0]?.header('Authorization')).toMatch(/^Digest .*username="carol"/);
      const sent = wire.entries
        .filter(
          (e) => e.localPort === registrar.port && e.direction === 'send' && !e.message.isRequest,
        )
        .map((e) => (e.message as SipResponse).status);
      expect(sent.slice(0, 2)).toEqual([401, 200]);
      const bindings = await registrar.dum.registrationPersistenceManager.getContacts(
        `sip:carol@127.0.0.1:${registrar.port}`,
      );
      expect(bindings).toHaveLength(1);
      expect(bindings[0]?.contact.uri.port).toBe(peer.port);
    });

    it('RFC 3261 §13 + RFC 3264: a DUM UAC calls baresip, /accept answers the offer, the DUM hangs up (BYE from the DUM)', async () => {
      const uac = await pool.start();
      const party = new DumParty();
      uac.dum.setInviteSessionHandler(party);
      const peer = await startPeer(`<sip:carol@127.0.0.1>;regint=0`);
      uac.dum.send(
        uac.dum.makeInviteSession(`sip:carol@127.0.0.1:${peer.port}`, uac.profile('alice'), {
          body: sdp('dum', 4020),
        }),
      );
      await peer.waitFor(/Incoming call/i);
      const mark = peer.log.length;
      peer.command('/accept');
      await waitUntil(() => party.events.includes('connected'), 'the call to connect');
      expect(party.answer).toMatch(/^m=audio \d+ RTP\/AVP/m);
      expect(party.answer).toMatch(/^c=IN IP4 127\.0\.0\.1/m);
      party.session?.get().end();
      await waitUntil(() => party.ended !== undefined, 'the BYE to be answered');
      expect(party.events).toEqual(['answer', 'connected', 'terminated:local-bye']);
      await peer.waitFor(/session closed|terminated/i, 5000, mark);
    });

    it('RFC 3261 §14.1 + RFC 3264 §8.4: the DUM puts baresip on hold by a re-INVITE (a=sendonly), baresip answers recvonly; resume (sendrecv)', async () => {
      const uac = await pool.start();
      wire.start();
      const party = new DumParty();
      uac.dum.setInviteSessionHandler(party);
      const peer = await startPeer(`<sip:carol@127.0.0.1>;regint=0`);
      uac.dum.send(
        uac.dum.makeInviteSession(`sip:carol@127.0.0.1:${peer.port}`, uac.profile('alice'), {
          body: sdp('dum', 4030),
        }),
      );
      await peer.waitFor(/Incoming call/i);
      peer.command('/accept');
      await waitUntil(() => party.events.includes('connected'), 'the call to connect');
      const session = party.session as Handle<InviteSession>;
      // RFC 3264 §8: each new offer raises the o= version.
      session.get().provideOffer(withDirection(sdp('dum', 4030), 'sendonly', 2));
      await waitUntil(() => party.answers.length + party.rejected.length >= 2, 'the hold answer');
      expect(party.rejected).toEqual([]);
      expect(party.answers[1]).toMatch(/^a=recvonly/m);
      session.get().provideOffer(withDirection(sdp('dum', 4030), 'sendrecv', 3));
      await waitUntil(() => party.answers.length + party.rejected.length >= 3, 'the resume answer');
      expect(party.rejected).toEqual([]);
      expect(party.answers[2]).not.toMatch(/^a=(recvonly|sendonly|inactive)/m);
      // Both re-INVITEs were answered 200 and ACKed in the dialog.
      expect(wire.statuses(uac.port, 'INVITE').filter((st) => st === 200)).toHaveLength(3);
      expect(wire.requests(uac.port, 'send', 'ACK').length).toBeGreaterThanOrEqual(3);
      session.get().end();
      await waitUntil(() => party.ended !== undefined, 'the BYE to be answered');
      expect(party.ended).toBe('local-bye');
    });
  },
);

/** `base` with its stream direction set (RFC 3264 §5.1) and its o= version set to `version`. */
function withDirection(base: string, direction: string, version: number): string {
  return base.replace('a=sendrecv', `a=${direction}`).replace(/^(o=\S+ \d+) \d+/m, `$1 ${version}`);
}
