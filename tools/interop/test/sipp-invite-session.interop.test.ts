import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type EndReason,
  type Handle,
  type InviteSession,
  type InviteSessionHandler,
  ServerInviteSession,
} from '@sipworks/dum';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { peerGate } from '../src/peer.ts';
import { freePort, type SippProcess, sippInfo, startSipp, waitForListen } from '../src/sipp.ts';
import { DumPool, sdp, type TestDum, WireLog, waitUntil } from './support/dum.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const scenario = (name: string): string => path.join(here, '..', 'sipp', name);

const sipp = sippInfo();
const gate = peerGate('SIPp (sip-tester)', sipp, 'sip-tester');
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** `sdp()` with the stream's direction changed (RFC 3264 §5.1, §8.4: hold is sendonly/recvonly). */
function directed(base: string, direction: 'sendonly' | 'recvonly', version = 2): string {
  return base.replace('a=sendrecv', `a=${direction}`).replace(/^(o=\S+ \d+) \d+/m, `$1 ${version}`);
}

/**
 * Real-peer flows of the invite session beyond the basic call: re-INVITE both ways, 100rel
 * and PRACK both ways, the session timer refreshed by UPDATE, REFER both ways. One SIPp
 * scenario from tools/interop/sipp per test, over UDP, one call, bounded by `-timeout`.
 */
describe.skipIf(gate.skip)(
  `SIPp invite-session flows against the DUM (${sipp.version || 'SIPp'})`,
  { timeout: 30_000 },
  () => {
    const pool = new DumPool();
    const running: SippProcess[] = [];
    const wire = new WireLog();
    beforeAll(() => gate.require());
    afterEach(async (ctx) => {
      wire.stop();
      const failed = ctx.task.result?.state === 'fail';
      const done = running.splice(0);
      await Promise.all(done.map((s) => s.stop()));
      for (const s of done) {
        if (failed) console.error(`[interop] SIPp traces\n${s.traces()}`);
        fs.rmSync(s.dir, { recursive: true, force: true });
      }
      await pool.stopAll();
    });

    /** Run a SIPp client scenario once against `dum`; its one call must pass. */
    async function runClient(file: string, dum: TestDum, extra: string[] = []) {
      const proc = await startSipp({
        scenario: { file: scenario(file) },
        transport: 'u1',
        port: await freePort(),
        remote: `127.0.0.1:${dum.port}`,
        calls: 1,
        service: 'bob',
        timeoutSeconds: 10,
        extra,
      });
      running.push(proc);
      const exit = await proc.wait(15_000);
      expect(exit.code, proc.traces()).toBe(0);
      expect(exit.stats?.successful, proc.traces()).toBe(1);
      return proc;
    }

    /** Start a SIPp server scenario and wait until it listens; returns its port. */
    async function startServer(file: string, extra: string[] = []) {
      const port = await freePort();
      const proc = await startSipp({
        scenario: { file: scenario(file) },
        transport: 'u1',
        port,
        calls: 1,
        timeoutSeconds: 10,
        extra,
      });
      running.push(proc);
      await waitForListen(port, 'udp', proc);
      return { proc, port };
    }

    async function serverPassed(proc: SippProcess): Promise<void> {
      const exit = await proc.wait(15_000);
      expect(exit.code, proc.traces()).toBe(0);
      expect(exit.stats?.successful, proc.traces()).toBe(1);
    }

    it('RFC 3261 §14.2 + RFC 3264 §8.4: SIPp re-INVITEs the DUM UAS with a sendonly offer, the DUM answers recvonly in the 200', async () => {
      const uas = await pool.start();
      const offers: string[] = [];
      let ended: EndReason | undefined;
      uas.dum.setInviteSessionHandler({
        onOffer(h, _m, body) {
          const s = h.get();
          const offer = text(body);
          offers.push(offer);
          if (s instanceof ServerInviteSession && !s.isConnected)
            s.accept({ body: sdp('bob', 5004) });
          else
            s.provideAnswer(
              directed(sdp('bob', 5004), /a=sendonly/.test(offer) ? 'recvonly' : 'sendonly'),
            );
        },
        onTerminated: (_h, reason) => void (ended = reason),
      });
      await runClient('reinvite-uac.xml', uas);
      await waitUntil(() => ended !== undefined, 'the session to end');
      expect(offers).toHaveLength(2);
      expect(offers[1]).toMatch(/^a=sendonly/m);
      expect(ended).toBe('remote-bye');
    });

    it('RFC 3261 §14.1 + RFC 3264 §8.4: the DUM UAC puts SIPp on hold with a re-INVITE (a=sendonly), SIPp answers recvonly', async () => {
      const uac = await pool.start();
      const { proc, port } = await startServer('reinvite-uas.xml');
      const answers: string[] = [];
      let ended: EndReason | undefined;
      const handler: InviteSessionHandler = {
        onConnected(h) {
          h.get().provideOffer(directed(sdp('alice', 4000), 'sendonly'));
        },
        onAnswer(h, _m, body) {
          answers.push(text(body));
          if (answers.length === 2) setTimeout(() => h.isValid() && h.get().end(), 50);
        },
        onOfferRejected: () => answers.push('rejected'),
        onTerminated: (_h, reason) => void (ended = reason),
      };
      uac.dum.setInviteSessionHandler(handler);
      uac.dum.send(
        uac.dum.makeInviteSession(`sip:service@127.0.0.1:${port}`, uac.profile('alice'), {
          body: sdp('alice', 4000),
        }),
      );
      await waitUntil(() => ended !== undefined, 'the call to end');
      await serverPassed(proc);
      expect(answers).toHaveLength(2);
      expect(answers[1]).toMatch(/^a=recvonly/m);
      expect(ended).toBe('local-bye');
    });

    it('RFC 3262 §3 + §5: SIPp requires 100rel, the DUM sends a reliable 183 with the answer, the 200 waits for the PRACK', async () => {
      const uas = await pool.start();
      wire.start();
      const events: string[] = [];
      uas.dum.setInviteSessionHandler({
        onOffer(h) {
          events.push('offer');
          const s = h.get();
          if (s instanceof ServerInviteSession)
            s.provisional(183, { body: sdp('bob', 5004), reliable: true });
        },
        onPrack(h) {
          events.push('prack');
          h.get().accept();
        },
        onConnected: () => void events.push('connected'),
        onTerminated: (_h, reason) => void events.push(`terminated:${reason}`),
      });
      await runClient('prack-uac.xml', uas);
      await waitUntil(() => events.includes('terminated:remote-bye'), 'the session to end');
      expect(events).toEqual(['offer', 'prack', 'connected', 'terminated:remote-bye']);
      // The 2xx went after the 200 to the PRACK (RFC 3262 §3), and carried no second answer.
      const sent = wire.entries.filter((e) => e.localPort === uas.port && e.direction === 'send');
      const order = sent
        .filter((e) => !e.message.isRequest)
        .map((e) => `${(e.message as { status: number }).status} ${e.message.cseq.method}`);
      expect(order.indexOf('200 PRACK')).toBeLessThan(order.indexOf('200 INVITE'));
      const ok = sent.find(
        (e) =>
          !e.message.isRequest &&
          e.message.cseq.method === 'INVITE' &&
          (e.message as { status: number }).status === 200,
      );
      expect(ok?.message.body.length).toBe(0);
    });

    it('RFC 3262 §4: SIPp sends a reliable 183 (RSeq 4711) to the DUM UAC, which PRACKs it with RAck "4711 <CSeq> INVITE"', async () => {
      const uac = await pool.start();
      wire.start();
      const { proc, port } = await startServer('prack-uas.xml');
      const events: string[] = [];
      uac.dum.setInviteSessionHandler({
        onProvisional: (_h, r) => void events.push(`provisional:${r.status}`),
        onAnswer: (_h, _m, body) => void events.push(`answer:${/o=sipp/.test(text(body))}`),
        onConnected(h) {
          events.push('connected');
          setTimeout(() => h.isValid() && h.get().end(), 50);
        },
        onTerminated: (_h, reason) => void events.push(`terminated:${reason}`),
      });
      const invite = uac.dum.makeInviteSession(
        `sip:service@127.0.0.1:${port}`,
        uac.profile('alice'),
        {
          body: sdp('alice', 4000),
        },
      );
      uac.dum.send(invite);
      await waitUntil(() => events.includes('terminated:local-bye'), 'the call to end');
      await serverPassed(proc);
      expect(events).toEqual([
        'provisional:183',
        'answer:true',
        'connected',
        'terminated:local-bye',
      ]);
      const pracks = wire.requests(uac.port, 'send', 'PRACK');
      expect(pracks).toHaveLength(1);
      expect(pracks[0]?.message.header('RAck')).toBe(`4711 ${invite.cseq.seq} INVITE`);
    });

    it("RFC 3261 §9.1 + §14.1: the DUM CANCELs its own re-INVITE after SIPp's 180; 200 to the CANCEL, 487, ACK, the call stays up", async () => {
      const uac = await pool.start();
      wire.start();
      const { proc, port } = await startServer('reinvite-cancel-uas.xml');
      const log: string[] = [];
      let session: Handle<InviteSession> | undefined;
      uac.dum.setInviteSessionHandler({
        onConnected(h) {
          log.push('connected');
          session = h;
          h.get().provideOffer(directed(sdp('alice', 4000), 'sendonly'));
        },
        onAnswer: () => void log.push('answer'),
        onOfferRejected(h, res) {
          log.push(`rejected:${res?.status}`);
          setTimeout(() => h.isValid() && h.get().end(), 50);
        },
        onTerminated: (_h, reason) => void log.push(`terminated:${reason}`),
      });
      uac.dum.send(
        uac.dum.makeInviteSession(`sip:service@127.0.0.1:${port}`, uac.profile('alice'), {
          body: sdp('alice', 4000),
        }),
      );
      await waitUntil(
        () => wire.statuses(uac.port, 'INVITE').includes(180),
        'the 180 to the re-INVITE',
      );
      expect(session?.get().cancelModification()).toBe(true);
      await waitUntil(() => log.some((l) => l.startsWith('terminated')), 'the call to end');
      await serverPassed(proc);
      expect(log).toEqual(['answer', 'connected', 'rejected:487', 'terminated:local-bye']);
      const reinvite = wire.requests(uac.port, 'send', 'INVITE')[1]?.message;
      const cancel = wire.requests(uac.port, 'send', 'CANCEL')[0]?.message;
      expect(cancel?.cseq.seq).toBe(reinvite?.cseq.seq);
      expect(cancel?.headers('Via')[0]).toBe(reinvite?.headers('Via')[0]);
      const acks = wire.requests(uac.port, 'send', 'ACK').map((e) => e.message.cseq.seq);
      expect(acks).toContain(reinvite?.cseq.seq);
    });

    it("RFC 3262 §5 + RFC 6337 §3.1: after the answer in SIPp's reliable 183, the DUM UAC offers again in the PRACK; SIPp answers in the 200 to the PRACK", async () => {
      const uac = await pool.start();
      wire.start();
      const { proc, port } = await startServer('prack-offer-uas.xml');
      const answers: string[] = [];
      const log: string[] = [];
      uac.dum.setInviteSessionHandler({
        onAnswer(h, _m, body) {
          answers.push(text(body));
          // The first answer came in the reliable 183: the new offer rides in its PRACK.
          if (answers.length === 1) h.get().provideOffer(directed(sdp('alice', 4000), 'sendonly'));
        },
        onOfferRejected: (_h, res) => void log.push(`rejected:${res?.status}`),
        onConnected(h) {
          log.push('connected');
          setTimeout(() => h.isValid() && h.get().end(), 50);
        },
        onTerminated: (_h, reason) => void log.push(`terminated:${reason}`),
      });
      uac.dum.send(
        uac.dum.makeInviteSession(`sip:service@127.0.0.1:${port}`, uac.profile('alice'), {
          body: sdp('alice', 4000),
        }),
      );
      await waitUntil(() => log.some((l) => l.startsWith('terminated')), 'the call to end');
      await serverPassed(proc);
      expect(log).toEqual(['connected', 'terminated:local-bye']);
      expect(answers).toHaveLength(2);
      expect(answers[1]).toMatch(/^a=recvonly/m);
      const prack = wire.requests(uac.port, 'send', 'PRACK')[0]?.message;
      expect(prack?.bodyText).toMatch(/^a=sendonly/m);
      // No UPDATE was needed.
      expect(wire.requests(uac.port, 'send', 'UPDATE')).toEqual([]);
    });

    it('RFC 4028 §7.2 + §10: SIPp answers Session-Expires refresher=uac with Allow: UPDATE, the DUM refreshes by UPDATE at half the interval', async () => {
      const uac = await pool.start();
      uac.dum.masterProfile.set('sessionTimers', true).set('sessionExpires', 90).set('minSE', 90);
      wire.start();
      // The interval comes from SIPp's 2xx (RFC 4028 §7.2: the UAC takes the 2xx's value).
      // 4 s keeps the test short; §4 would forbid it below 90 s between real peers.
      const { proc, port } = await startServer('timer-update-uas.xml', [
        '-key',
        'session_expires',
        '4',
      ]);
      let ended: EndReason | undefined;
      let state: InviteSession['sessionTimerState'] | undefined;
      let session: Handle<InviteSession> | undefined;
      uac.dum.setInviteSessionHandler({
        onConnected(h) {
          session = h;
          state = h.get().sessionTimerState;
        },
        onSessionExpired: () => void (ended = 'timeout'),
        onTerminated: (_h, reason) => void (ended ??= reason),
      });
      const started = Date.now();
      uac.dum.send(
        uac.dum.makeInviteSession(`sip:service@127.0.0.1:${port}`, uac.profile('alice'), {
          body: sdp('alice', 4000),
        }),
      );
      await waitUntil(
        () => wire.statuses(uac.port, 'UPDATE').length >= 2 || ended !== undefined,
        'two refreshes',
        12_000,
      );
      const elapsed = Date.now() - started;
      expect(ended).toBeUndefined();
      expect(state).toEqual({ interval: 4, refresher: 'local' });
      // Two refreshes at half the interval each: about 4 s, before the session could expire.
      expect(elapsed).toBeGreaterThan(3_500);
      expect(elapsed).toBeLessThan(6_500);
      const updates = wire.requests(uac.port, 'send', 'UPDATE');
      // Each refresh asks for the interval again, raised to our Min-SE (RFC 4028 §7.4), and
      // SIPp's 2xx sets it back to 4 s (refresher=uac).
      expect(updates.map((u) => u.message.header('Session-Expires'))).toEqual([
        '90;refresher=uac',
        '90;refresher=uac',
      ]);
      expect(wire.requests(uac.port, 'send', 'INVITE')).toHaveLength(1);
      session?.get().end();
      await waitUntil(() => ended !== undefined, 'the call to end');
      expect(ended).toBe('local-bye');
      await serverPassed(proc);
    });

    it('RFC 3515 §2.4: SIPp REFERs the DUM to a second DUM; 202, NOTIFY sipfrag 100 Trying, the call, NOTIFY 200 OK', async () => {
      const transferee = await pool.start();
      const target = await pool.start();
      const log: string[] = [];
      target.dum.setInviteSessionHandler({
        onOffer(h) {
          const s = h.get();
          if (s instanceof ServerInviteSession) s.accept({ body: sdp('carol', 6000) });
        },
        onConnected: () => void log.push('target:connected'),
      });
      transferee.dum.setInviteSessionHandler({
        onOffer(h) {
          const s = h.get();
          if (s instanceof ServerInviteSession && !s.isConnected)
            s.accept({ body: sdp('bob', 5004) });
        },
        onRefer(_h, sub, refer) {
          log.push(`refer:${refer.header('Refer-To')}`);
          sub.get().acceptRefer();
          transferee.dum.send(
            transferee.dum.makeInviteSessionFromRefer(sub, transferee.profile('bob'), {
              body: sdp('bob', 5006),
            }),
          );
        },
        onConnected: (h) => void log.push(`transferee:connected:${h.get().kind}`),
        onTerminated: (h, reason) =>
          void log.push(`transferee:terminated:${h.get().kind}:${reason}`),
      });
      const carol = target.uri('carol');
      await runClient('refer-uac.xml', transferee, ['-key', 'refer_to', carol]);
      await waitUntil(
        () => log.some((l) => l.startsWith('transferee:terminated:Server')),
        'the transferor to hang up',
      );
      expect(log).toContain(`refer:<${carol}>`);
      expect(log).toContain('target:connected');
      expect(log).toContain('transferee:connected:ClientInviteSession');
      // The transferor's BYE after the transfer worked: the session ends as `referred`.
      expect(log).toContain('transferee:terminated:ServerInviteSession:referred');
    });

    it('RFC 3515 §2.4.4 + §2.4.5: the DUM REFERs SIPp in a call; 202, then NOTIFYs 100 and 200 reach onReferProgress', async () => {
      const uac = await pool.start();
      const { proc, port } = await startServer('refer-uas.xml');
      const log: string[] = [];
      uac.dum.setInviteSessionHandler({
        onConnected: (h) => void h.get().refer(`sip:target@127.0.0.1:${port}`),
        onReferAccepted: (_h, sub, res) =>
          void log.push(`accepted:${res.status}:${sub !== undefined}`),
        onReferRejected: (_h, res) => void log.push(`rejected:${res.status}`),
        onReferProgress(h, _sub, status) {
          log.push(`progress:${status?.status}:${status?.final}`);
          if (status?.final) setTimeout(() => h.isValid() && h.get().end(), 50);
        },
        onTerminated: (_h, reason) => void log.push(`terminated:${reason}`),
      });
      uac.dum.send(
        uac.dum.makeInviteSession(`sip:service@127.0.0.1:${port}`, uac.profile('alice'), {
          body: sdp('alice', 4000),
        }),
      );
      await waitUntil(() => log.some((l) => l.startsWith('terminated')), 'the call to end');
      await serverPassed(proc);
      expect(log).toEqual([
        'accepted:202:true',
        'progress:100:false',
        'progress:200:true',
        // Ended after the transfer worked (a final 2xx sipfrag): `referred`.
        'terminated:referred',
      ]);
    });
  },
);
