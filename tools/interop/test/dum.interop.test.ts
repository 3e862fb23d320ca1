import diagnosticsChannel from 'node:diagnostics_channel';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ClientPagerMessageHandler,
  DialogUsageManager,
  type UserProfile,
} from '@sipworks/dum';
import type { SipRequest, SipResponse } from '@sipworks/message';
import { CHANNELS, SipStack, type Transport, type TransportMessageEvent } from '@sipworks/stack';
import { TcpTransport } from '@sipworks/transport-tcp';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type KamailioProcess, kamailioInfo, startKamailio } from '../src/kamailio.ts';
import {
  freePort,
  type SippProcess,
  type SippTransport,
  sippInfo,
  startSipp,
} from '../src/sipp.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const scenario = (name: string): string => path.join(here, '..', 'scenarios', name);
const KAMAILIO_CONFIG = path.join(here, '..', 'kamailio', 'message-auth.cfg');

const inCi = process.env.CI === 'true';
const sipp = sippInfo();
const kamailio = kamailioInfo();
if (!sipp.available && !inCi)
  console.warn(`[interop] DUM/SIPp tests skipped: ${sipp.reason} (apt-get install sip-tester)`);
if (!kamailio.available && !inCi)
  console.warn(
    `[interop] DUM/Kamailio tests skipped: ${kamailio.reason} (apt-get install kamailio)`,
  );

type Proto = 'UDP' | 'TCP';

/** A DUM on a started stack with one transport on 127.0.0.1 (a free port), recording the MESSAGE bodies it accepts. */
interface TestDum {
  dum: DialogUsageManager;
  stack: SipStack;
  transport: Transport;
  port: number;
  /** MESSAGE requests accepted, in order. */
  messages: SipRequest[];
}

const stacks: SipStack[] = [];

async function startDum(proto: Proto = 'UDP'): Promise<TestDum> {
  const stack = new SipStack();
  stacks.push(stack);
  await stack.start();
  const transport =
    proto === 'UDP'
      ? new UdpTransport({ address: '127.0.0.1', port: 0 })
      : new TcpTransport({ address: '127.0.0.1', port: 0 });
  await stack.addTransport(transport);
  const dum = new DialogUsageManager({ stack });
  const messages: SipRequest[] = [];
  dum.setServerPagerMessageHandler({
    onMessageArrived(handle, message) {
      messages.push(message);
      handle.get().accept();
    },
  });
  return { dum, stack, transport, port: transport.local.port, messages };
}

async function stopStacks(): Promise<void> {
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
}

describe.skipIf(!sipp.available && !inCi)(
  `SIPp to a DUM (${sipp.version || 'SIPp'})`,
  { timeout: 30_000 },
  () => {
    const running: SippProcess[] = [];
    beforeAll(() => {
      if (!sipp.available)
        throw new Error(
          `SIPp is required when CI=true, but ${sipp.reason} (apt-get install sip-tester)`,
        );
    });
    afterEach(async (ctx) => {
      if (ctx.task.result?.state === 'fail')
        for (const s of running) console.error(`[interop] SIPp traces\n${s.traces()}`);
      await Promise.all(running.splice(0).map((s) => s.stop()));
      await stopStacks();
    });

    const modes: Array<{ proto: Proto; sipp: SippTransport }> = [
      { proto: 'UDP', sipp: 'u1' },
      { proto: 'TCP', sipp: 't1' },
    ];

    async function run(
      file: string,
      mode: { sipp: SippTransport },
      dumPort: number,
      calls: number,
    ) {
      const proc = await startSipp({
        scenario: { file: scenario(file) },
        transport: mode.sipp,
        port: await freePort(),
        remote: `127.0.0.1:${dumPort}`,
        calls,
        service: 'bob',
        timeoutSeconds: 15,
        extra: ['-r', '20'],
      });
      running.push(proc);
      const exit = await proc.wait(20_000);
      return { proc, exit };
    }

    for (const mode of modes) {
      it(`dum-options-uac.xml: 3 OPTIONS answered 200 from the master profile over ${mode.proto} (-t ${mode.sipp})`, async () => {
        const b = await startDum(mode.proto);
        const { proc, exit } = await run('dum-options-uac.xml', mode, b.port, 3);
        expect(exit.code, proc.traces()).toBe(0);
        expect(exit.stats?.successful, proc.traces()).toBe(3);
        expect(exit.stats?.failed).toBe(0);
        expect(b.messages).toHaveLength(0);
      });

      it(`dum-message-uac.xml: 3 MESSAGEs accepted with 200, bodies seen by the ServerPagerMessageHandler over ${mode.proto} (-t ${mode.sipp})`, async () => {
        const b = await startDum(mode.proto);
        const { proc, exit } = await run('dum-message-uac.xml', mode, b.port, 3);
        expect(exit.code, proc.traces()).toBe(0);
        expect(exit.stats?.successful, proc.traces()).toBe(3);
        expect(exit.stats?.failed).toBe(0);
        expect(exit.stats?.retransmissions ?? 0).toBe(0);
        // Each page once: a retransmission is absorbed by the server transaction.
        expect(b.messages.map((m) => m.bodyText.trim()).sort()).toEqual([
          'Hello from SIPp, page 1',
          'Hello from SIPp, page 2',
          'Hello from SIPp, page 3',
        ]);
        for (const m of b.messages) {
          expect(m.method).toBe('MESSAGE');
          expect(m.contentType?.mimeType).toBe('text/plain');
        }
      });
    }
  },
);

const REALM = 'sipworks.test';
const PASSWORD = 'wonderland';

/** What DUM A received: status and CSeq of each response, and the challenge headers of 407s. */
interface Seen {
  status: number;
  cseq: number;
  callId: string;
  proxyAuthenticate: string[];
}

describe.skipIf(!kamailio.available && !inCi)(
  `Kamailio between two DUMs (${kamailio.version || 'Kamailio'})`,
  { timeout: 20_000 },
  () => {
    let proxy: KamailioProcess | undefined;
    let a: TestDum;
    let b: TestDum;
    let proxyPort = 0;
    const seen: Seen[] = [];
    const outcomes: Array<{ ok: boolean; response: SipResponse; body?: string }> = [];
    const onReceive = (event: unknown): void => {
      const e = event as TransportMessageEvent;
      if (!a || e.local.port !== a.port || e.message.isRequest) return;
      const res = e.message as SipResponse;
      seen.push({
        status: res.status,
        cseq: res.cseq.seq,
        callId: res.callId,
        proxyAuthenticate: res.headers('Proxy-Authenticate'),
      });
    };

    beforeAll(async () => {
      if (!kamailio.available)
        throw new Error(
          `Kamailio is required when CI=true, but ${kamailio.reason} (apt-get install kamailio)`,
        );
      b = await startDum('UDP');
      a = await startDum('UDP');
      const pager: ClientPagerMessageHandler = {
        onSuccess: (_h, response) => outcomes.push({ ok: true, response }),
        onFailure: (_h, response, body) =>
          outcomes.push({ ok: false, response, body: new TextDecoder().decode(body) }),
      };
      a.dum.setClientPagerMessageHandler(pager);
      proxyPort = await freePort();
      proxy = startKamailio({
        config: KAMAILIO_CONFIG,
        port: proxyPort,
        modules: kamailio.modules,
        defines: {
          REALM,
          PASSWORD,
          USERNAME: 'alice',
          RELAY: `sip:127.0.0.1:${b.port}`,
        },
      });
      try {
        await proxy.ready(8000);
      } catch (e) {
        console.error(proxy.report());
        throw e;
      }
      diagnosticsChannel.subscribe(CHANNELS.receive, onReceive);
    });

    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail' && proxy)
        console.error(`[interop] Kamailio\n${proxy.report()}`);
      seen.length = 0;
      outcomes.length = 0;
    });

    afterAll(async () => {
      diagnosticsChannel.unsubscribe(CHANNELS.receive, onReceive);
      await proxy?.stop();
      await stopStacks();
    });

    function alice(settings: { outboundProxy?: string; password?: string } = {}): UserProfile {
      const profile = a.dum.makeUserProfile({
        aor: `"Alice" <sip:alice@${REALM}>`,
        ...(settings.outboundProxy ? { outboundProxy: settings.outboundProxy } : {}),
      });
      profile.addCredentials({
        realm: REALM,
        username: 'alice',
        password: settings.password ?? PASSWORD,
      });
      return profile;
    }

    async function outcome(ms = 8000): Promise<(typeof outcomes)[number]> {
      const end = Date.now() + ms;
      while (outcomes.length === 0) {
        if (Date.now() > end) throw new Error(`no final outcome for the page within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return outcomes[0] as (typeof outcomes)[number];
    }

    /** Wait a moment for stray copies (retransmissions relayed twice) before counting. */
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

    function expectChallengedThenOk(callId: string): void {
      const mine = seen.filter((s) => s.callId === callId);
      const statuses = mine.map((s) => s.status).filter((s) => s >= 200);
      expect(statuses, proxy?.report()).toEqual([407, 200]);
      const [challenge, ok] = mine.filter((s) => s.status >= 200) as [Seen, Seen];
      expect(challenge.proxyAuthenticate.join(' ')).toMatch(
        new RegExp(`^Digest .*realm="${REALM.replace('.', '\\.')}"`),
      );
      // The retry is a new transaction of the same Call-ID, with the next CSeq.
      expect(ok.cseq).toBe(challenge.cseq + 1);
    }

    it('outbound proxy: MESSAGE to DUM B with a Route to Kamailio, challenged with 407, then relayed', async () => {
      const profile = alice({ outboundProxy: `sip:127.0.0.1:${proxyPort}` });
      const text = 'Hello Bob, by way of an outbound proxy';
      const pager = a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, profile);
      pager.get().page(text);
      const result = await outcome();
      expect(result.ok, `${result.response.status} ${result.response.reason}`).toBe(true);
      expect(result.response.status).toBe(200);
      await settle();
      const got = b.messages.filter((m) => m.bodyText === text);
      expect(got).toHaveLength(1);
      const relayed = got[0] as SipRequest;
      expectChallengedThenOk(relayed.callId);
      // Kamailio consumed the credentials and the preloaded Route, and added its Via.
      expect(relayed.headers('Proxy-Authorization')).toEqual([]);
      expect(relayed.headers('Route')).toEqual([]);
      expect(relayed.headers('Via')).toHaveLength(2);
      expect(relayed.uri.toString()).toBe(`sip:bob@127.0.0.1:${b.port}`);
      expect(relayed.from.uri.toString()).toBe(`sip:alice@${REALM}`);
    });

    it('Request-URI at Kamailio: challenged with 407, then relayed to DUM B by the proxy', async () => {
      const profile = alice();
      const text = 'Hello Bob, through the proxy by its own address';
      const pager = a.dum.makePagerMessage(`sip:bob@127.0.0.1:${proxyPort}`, profile);
      pager.get().page(text);
      const result = await outcome();
      expect(result.ok, `${result.response.status} ${result.response.reason}`).toBe(true);
      expect(result.response.status).toBe(200);
      await settle();
      const got = b.messages.filter((m) => m.bodyText === text);
      expect(got).toHaveLength(1);
      expectChallengedThenOk((got[0] as SipRequest).callId);
      expect((got[0] as SipRequest).headers('Proxy-Authorization')).toEqual([]);
    });

    it('two pages queued on one pager: each delivered once, in order, in one Call-ID with rising CSeqs', async () => {
      const profile = alice({ outboundProxy: `sip:127.0.0.1:${proxyPort}` });
      const texts = ['first of two', 'second of two'];
      const pager = a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, profile);
      for (const t of texts) pager.get().page(t);
      const end = Date.now() + 8000;
      while (outcomes.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(outcomes.map((o) => o.response.status)).toEqual([200, 200]);
      await settle();
      const got = b.messages.filter((m) => texts.includes(m.bodyText));
      expect(got.map((m) => m.bodyText)).toEqual(texts);
      const [first, second] = got as [SipRequest, SipRequest];
      expect(second.callId).toBe(first.callId);
      expect(second.cseq.seq).toBeGreaterThan(first.cseq.seq);
      // The first page is challenged; the second carries the realm's credentials up front
      // (pre-emptive, nonce count 2, to the next hop that challenged) and is not.
      expect(seen.filter((s) => s.status >= 200).map((s) => s.status)).toEqual([407, 200, 200]);
      expect(second.headers('Proxy-Authorization')).toEqual([]);
    });

    it('a wrong password: the second 407 is reported with the undelivered body, nothing reaches DUM B', async () => {
      const profile = alice({ outboundProxy: `sip:127.0.0.1:${proxyPort}`, password: 'not-it' });
      const text = 'This page must not arrive';
      const before = b.messages.length;
      a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, profile).get().page(text);
      const result = await outcome();
      expect(result.ok).toBe(false);
      expect(result.response.status).toBe(407);
      expect(result.body).toBe(text);
      await settle();
      expect(b.messages.length).toBe(before);
      // One answer with credentials, then the report: no loop.
      expect(seen.map((s) => s.status).filter((s) => s >= 200)).toEqual([407, 407]);
    });
  },
);
