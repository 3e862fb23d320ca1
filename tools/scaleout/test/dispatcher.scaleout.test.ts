import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ClientPagerMessage,
  type ClientRegistration,
  DialogUsageManager,
  type EndReason,
  type Handle,
  type InviteSession,
  type ServerInviteSession,
  type UserProfile,
} from '@sipworks/dum';
import { type KamailioProcess, kamailioInfo, startKamailio } from '@sipworks/interop/kamailio';
import { peerGate } from '@sipworks/interop/peer';
import type { SipRequest, SipResponse } from '@sipworks/message';
import {
  DISPATCHER_CONFIG,
  DISPATCHER_MODULES,
  type DispatcherTarget,
  dispatcherTargets,
  ServeNode,
  writeDispatcherList,
} from '@sipworks/scaleout';
import { SipStack } from '@sipworks/stack';
import {
  findExecutable,
  freePort,
  RedisServerProcess,
  redisServerRequirement,
} from '@sipworks/test-support';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

/**
 * Scale-out (docs/scale-out.md): two `sipworks serve` nodes keep their bindings in one
 * Redis, behind Kamailio's dispatcher. A user registered through one node is reached
 * through the other; a node that dies (SIGKILL) is found out by Kamailio's OPTIONS
 * probing, or by a request that times out on it, and the survivor takes the traffic with
 * every binding still there.
 */

const DOMAIN = 'sipworks.test';
/** The nodes' digest realm (`serve --realm`'s default) and the users' passwords (`--users`). */
const REALM = 'sipworks';
const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw' };

const kamailio = kamailioInfo(undefined, DISPATCHER_MODULES);
const kamcmd = findExecutable(process.env.KAMCMD ?? 'kamcmd');
const kamailioGate = peerGate(
  'scale-out (Kamailio dispatcher)',
  kamcmd === undefined ? { available: false, reason: 'kamcmd not found' } : kamailio,
  'kamailio',
);
const redis = redisServerRequirement('scaleout');
const skip = kamailioGate.skip || redis.skip;

/** Poll `cond` every 20 ms, at most `ms`. */
async function until(cond: () => boolean, what: string, ms = 8_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A short SDP offer or answer (RFC 4566) for one PCMU stream. */
function sdp(user: string, port: number): string {
  return `v=0\r\no=${user} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
}

/**
 * A user agent on its own stack (UDP on 127.0.0.1), whose outbound proxy is Kamailio:
 * it registers, pages, calls and answers (180, then 200 with SDP) and records what it
 * received.
 */
class User {
  readonly received: SipRequest[] = [];
  readonly invites: SipRequest[] = [];
  readonly ended: EndReason[] = [];
  readonly results = new Map<number, SipResponse>();
  registered: SipResponse | undefined;
  connected: Handle<InviteSession> | undefined;
  profile!: UserProfile;
  port = 0;
  readonly name: string;
  readonly dum: DialogUsageManager;
  readonly stack: SipStack;

  private constructor(name: string, dum: DialogUsageManager, stack: SipStack) {
    this.name = name;
    this.dum = dum;
    this.stack = stack;
  }

  static async start(name: string, proxyPort: number): Promise<User> {
    const stack = new SipStack();
    await stack.start();
    const transport = new UdpTransport({ address: '127.0.0.1', port: 0 });
    await stack.addTransport(transport);
    const u = new User(name, new DialogUsageManager({ stack }), stack);
    u.port = transport.local.port;
    u.profile = u.dum
      .makeUserProfile({
        aor: `<sip:${name}@${DOMAIN}>`,
        outboundProxy: `sip:127.0.0.1:${proxyPort}`,
      })
      .addCredentials({ realm: REALM, username: name, password: PASSWORDS[name] ?? '' });
    u.dum.setClientRegistrationHandler({ onSuccess: (_h, res) => void (u.registered = res) });
    u.dum.setServerPagerMessageHandler({
      onMessageArrived: (h, msg) => {
        u.received.push(msg);
        h.get().accept();
      },
    });
    const done = (h: Handle<ClientPagerMessage>, res: SipResponse) => {
      u.results.set(h.id, res);
      h.get().end();
    };
    u.dum.setClientPagerMessageHandler({ onSuccess: done, onFailure: done });
    u.dum.setInviteSessionHandler({
      onNewSession: (h: Handle<ServerInviteSession>, invite: SipRequest) => {
        u.invites.push(invite);
        h.get().provisional(180);
        setTimeout(() => h.isValid() && h.get().accept({ body: sdp(name, 5004) }), 50);
      },
      onConnected: (h) => void (u.connected = h),
      onTerminated: (_h, reason) => void u.ended.push(reason),
    });
    return u;
  }

  /** REGISTER through Kamailio (RFC 3261 §10.2); resolves on the 2xx. */
  async register(): Promise<SipResponse> {
    this.registered = undefined;
    this.dum.send<ClientRegistration>(
      this.dum.makeRegistration(undefined, this.profile, { expires: 300 }),
    );
    let ok: SipResponse | undefined;
    await until(() => (ok = this.registered) !== undefined, `${this.name}'s REGISTER`);
    return ok as SipResponse;
  }

  /** A MESSAGE (RFC 3428) to `user` at the domain; resolves with its final response. */
  async page(user: string, text: string, ms = 8_000): Promise<SipResponse> {
    const h = this.dum.makePagerMessage(`sip:${user}@${DOMAIN}`, this.profile);
    h.get().page(text);
    await until(() => this.results.has(h.id), `the answer to MESSAGE '${text}'`, ms);
    return this.results.get(h.id) as SipResponse;
  }

  /** Text of every MESSAGE received. */
  get texts(): string[] {
    return this.received.map((m) => new TextDecoder().decode(m.body));
  }

  async stop(): Promise<void> {
    await this.dum.shutdown({ timeoutMs: 200 }).catch(() => {});
    await this.stack.stop();
  }
}

describe.skipIf(skip)(
  `scale-out: two serve nodes on one Redis behind Kamailio's dispatcher (${kamailio.version || 'Kamailio'})`,
  { timeout: 30_000 },
  () => {
    let dir = '';
    let store: RedisServerProcess | undefined;
    let proxy: KamailioProcess | undefined;
    let proxyPort = 0;
    let ctl = '';
    const nodes: ServeNode[] = [];
    const users: User[] = [];
    let alice: User;
    let bob: User;
    let storeUrl = '';
    /** The node that took bob's REGISTER, and the other one. */
    let registrar: ServeNode;
    let other: ServeNode;

    const nodeOf = (port: number): ServeNode => {
      const n = nodes.find((x) => x.port === port && x.isRunning);
      if (!n) throw new Error(`no running node on port ${port}`);
      return n;
    };
    const targets = (): Promise<DispatcherTarget[]> => dispatcherTargets(kamcmd as string, ctl);
    /**
     * Wait until Kamailio shows the node on `port` with the flags `state`: `AP` (active,
     * probed and answering; `AX` before its first probe is answered) or `IP` (inactive,
     * probed until it answers).
     */
    const waitState = async (port: number, state: 'AP' | 'IP', ms = 8_000): Promise<string> => {
      const end = Date.now() + ms;
      for (;;) {
        const t = (await targets()).find((x) => x.uri === `sip:127.0.0.1:${port}`);
        if (t?.flags === state) return t.flags;
        if (Date.now() > end)
          throw new Error(`node ${port} not ${state} within ${ms} ms: ${JSON.stringify(t)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    let usersFile = '';
    const startNode = async (name: string, port: number): Promise<ServeNode> => {
      const n = new ServeNode({ name, port, store: storeUrl, args: ['--users', usersFile] });
      nodes.push(n);
      await n.ready();
      return n;
    };

    /** Set when a test (or the setup) failed: the processes' output is printed then. */
    let failed = false;

    beforeAll(async () => {
      kamailioGate.require();
      redis.assertAvailable();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-scaleout-'));
      failed = true; // until the setup is done
      store = await RedisServerProcess.start(redis.binary);
      storeUrl = `${store.url}/0?prefix=scaleout:`;
      usersFile = path.join(dir, 'users.txt');
      fs.writeFileSync(
        usersFile,
        Object.entries(PASSWORDS)
          .map(([u, p]) => `${u}:${p}\n`)
          .join(''),
      );
      const [portA, portB] = [await freePort(), await freePort()];
      await Promise.all([
        startNode('node-a', portA as number),
        startNode('node-b', portB as number),
      ]);
      const list = path.join(dir, 'dispatcher.list');
      writeDispatcherList(list, [
        { address: '127.0.0.1', port: portA as number },
        { address: '127.0.0.1', port: portB as number },
      ]);
      proxyPort = await freePort();
      ctl = `unix:${path.join(dir, 'kamailio-ctl.sock')}`;
      proxy = startKamailio({
        config: DISPATCHER_CONFIG,
        port: proxyPort,
        modules: kamailio.modules,
        dir: path.join(dir, 'kamailio'),
        defines: { DS_LIST: list, CTL_SOCKET: ctl },
      });
      await proxy.ready(8_000);
      alice = await User.start('alice', proxyPort);
      bob = await User.start('bob', proxyPort);
      users.push(alice, bob);
      failed = false;
    }, 30_000);

    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') failed = true;
    });
    afterAll(async () => {
      if (failed) {
        console.error(proxy?.report() ?? 'Kamailio did not start');
        for (const n of nodes) console.error(n.report());
      }
      await Promise.all(users.map((u) => u.stop()));
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await proxy?.stop();
      await store?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }, 20_000);

    it('Kamailio probes both nodes with OPTIONS and holds them active (dispatcher ds_ping_interval)', async () => {
      // The nodes challenge the probes (--users): 401 counts as alive (ds_ping_reply_codes).
      for (const n of nodes) expect(await waitState(n.port, 'AP')).toBe('AP');
      // The probes reached the nodes, from Kamailio's address, as OPTIONS to the node itself.
      for (const n of nodes)
        await n.waitFor(
          (e) =>
            e.event === 'request' &&
            e.method === 'OPTIONS' &&
            e.source === `127.0.0.1:${proxyPort}`,
          'an OPTIONS probe from Kamailio',
        );
    });

    it('RFC 3261 §22.2 + RFC 3327 + RFC 3428: bob registers through one node (challenged by the other); alice reaches him with MESSAGE through the other', async () => {
      const ok = await bob.register();
      expect(ok.status).toBe(200);
      expect(ok.headers('Contact').join(',')).toContain(`sip:bob@127.0.0.1:${bob.port}`);
      const regNode = nodes.find((n) =>
        n.logs.some((l) => l.startsWith(`registered sip:bob@${DOMAIN}`)),
      );
      expect(regNode, 'a node logs the REGISTER').toBeDefined();
      registrar = regNode as ServeNode;
      other = nodes.find((n) => n !== registrar) as ServeNode;
      // Round-robin: the first REGISTER went to the other node, which challenged it (401);
      // the registrar accepted the answer to that challenge: the nodes share the nonce key
      // (set in Redis by the first node).
      const registers = (n: ServeNode) =>
        n.events.filter((e) => e.event === 'request' && e.method === 'REGISTER').length;
      expect([registers(other), registers(registrar)]).toEqual([1, 1]);
      expect(other.logs.some((l) => l.startsWith('registered'))).toBe(false);

      // alice registers the same way (challenged by one node, accepted by the registrar);
      // then her MESSAGE, with her credentials sent at once (preemptive), goes to the other
      // node, which never saw bob's REGISTER: it finds his binding in Redis.
      expect((await alice.register()).status).toBe(200);
      expect(registrar.logs.some((l) => l.startsWith(`registered sip:alice@${DOMAIN}`))).toBe(true);
      const res = await alice.page('bob', 'hello through the other node');
      expect(res.status).toBe(200);
      expect(bob.texts).toEqual(['hello through the other node']);
      expect(other.logs).toContainEqual(
        `relayed MESSAGE sip:alice@${DOMAIN} -> sip:bob@${DOMAIN}: 200 OK`,
      );
      expect(registrar.logs.some((l) => l.startsWith('relayed MESSAGE'))).toBe(false);
      // RFC 3327 §5.3: the node sent it through Kamailio (the Path Kamailio added to the
      // REGISTER, stored in Redis, as the Route), which consumed the Route.
      const msg = bob.received[0] as SipRequest;
      expect(msg.uri.toString()).toBe(`sip:bob@127.0.0.1:${bob.port}`);
      expect(msg.headers('Route')).toEqual([]);
      expect(msg.headers('Via')).toHaveLength(2);
      expect(msg.headers('Via')[0]).toContain(`127.0.0.1:${proxyPort}`);
      expect(msg.headers('Via')[1]).toContain(`127.0.0.1:${other.port}`);
    });

    it('RFC 3261 §16.6 + §12.2: alice calls bob through the node that did not register him; the dialog stays on that node by Record-Route', async () => {
      // bob's MESSAGE to alice takes the registrar's turn, so the INVITE goes to the other node.
      expect((await bob.page('alice', 'call me')).status).toBe(200);
      expect(alice.texts).toEqual(['call me']);
      alice.dum.send(
        alice.dum.makeInviteSession(`sip:bob@${DOMAIN}`, alice.profile, {
          body: sdp('alice', 4000),
        }),
      );
      await until(() => alice.connected !== undefined && bob.connected !== undefined, 'the call');
      await other.waitFor((e) => e.event === 'log' && e.message === 'call bridged', 'call bridged');
      expect(registrar.logs).not.toContain('call bridged');
      // The B2BUA's leg to bob went through Kamailio, which record-routed it.
      const invite = bob.invites[0] as SipRequest;
      expect(invite.headers('Record-Route')[0]).toContain(`sip:127.0.0.1:${proxyPort};lr`);
      expect(invite.headers('Via')[1]).toContain(`127.0.0.1:${other.port}`);

      alice.connected?.get().end();
      await until(() => bob.ended.length > 0 && alice.ended.length > 0, 'the BYE on both legs');
      expect(alice.ended).toEqual(['local-bye']);
      expect(bob.ended).toEqual(['remote-bye']);
      await other.waitFor(
        (e) => e.event === 'request' && e.method === 'BYE' && e.source === `127.0.0.1:${proxyPort}`,
        "alice's BYE, routed by Kamailio to the node holding the dialog",
      );
    });

    it('a node killed (SIGKILL) is marked inactive by the OPTIONS probes; the survivor serves both users from Redis', async () => {
      await registrar.kill('SIGKILL');
      expect(await waitState(registrar.port, 'IP', 6_000)).toBe('IP');
      // No request went to it: the probes alone found it dead.
      expect(proxy?.log).not.toMatch(/did not answer/);
      expect(await waitState(other.port, 'AP')).toBe('AP');

      // Both bindings were written through the dead node; the survivor reads them in Redis.
      expect((await alice.page('bob', 'after the crash')).status).toBe(200);
      expect((await bob.page('alice', 'still here')).status).toBe(200);
      // Neither was sent to the dead node first (no failover, no 1.5 s wait).
      expect(proxy?.log).not.toMatch(/did not answer|failover of/);
      expect(bob.texts).toContain('after the crash');
      expect(alice.texts).toContain('still here');
      expect(other.logs).toContainEqual(
        `relayed MESSAGE sip:bob@${DOMAIN} -> sip:alice@${DOMAIN}: 200 OK`,
      );
    });

    it('a node that comes back is probed active again; a request to a node that just died fails over to the next one (ds_next_dst)', async () => {
      const back = await startNode('node-restarted', registrar.port);
      expect(await waitState(back.port, 'AP')).toBe('AP');

      // Kill the other node now, and page at once, before a probe has missed it: one of the
      // two MESSAGEs is dispatched (round-robin) to the dead node, times out there
      // (fr_timer, 1.5 s) and is sent again to the restarted one.
      await other.kill('SIGKILL');
      const a = await alice.page('bob', 'failover 1');
      const b = await alice.page('bob', 'failover 2');
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(bob.texts).toEqual(expect.arrayContaining(['failover 1', 'failover 2']));
      expect(proxy?.log).toMatch(
        new RegExp(`node sip:127\\.0\\.0\\.1:${other.port} did not answer MESSAGE`),
      );
      expect(proxy?.log).toMatch(
        new RegExp(`failover of MESSAGE to node sip:127\\.0\\.0\\.1:${back.port}`),
      );
      expect(nodeOf(back.port).logs.filter((l) => l.startsWith('relayed MESSAGE'))).toHaveLength(2);
      expect(await waitState(other.port, 'IP')).toBe('IP');
    });
  },
);
