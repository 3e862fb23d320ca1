import {
  type ClientInviteSession,
  DialogUsageManager,
  type EndReason,
  type SipfragStatus,
} from '@sipworks/dum';
import { SipStack } from '@sipworks/stack';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeOffer } from '../src/sdp.ts';
import { inOrder, jsonLines, killAll, Server, sipworks } from './support.ts';

/**
 * `sipworks refer`, REFER handled by `serve`, reliable provisional responses (`--prack`)
 * and session timers (`--session-expires`), each run against `sipworks serve`.
 *
 * Session timers: RFC 4028 §4 sets Min-SE to at least 90 s, so a refresh (at half the
 * interval) would take 45 s. The tests lower the profile's `minSE` with `--min-se 1` on
 * both sides and ask for a 2 s interval, so the refresh comes after 1 s.
 */
const servers: Server[] = [];
const serve = (args: string[]) => {
  const s = new Server(['--listen', 'udp:127.0.0.1:0', '--answer-delay', '50', ...args]);
  servers.push(s);
  return s;
};
const stacks: SipStack[] = [];

/**
 * Three servers for the whole file (each spawn costs a second of CPU): `auto` answers
 * (100rel supported, the default); `busy` refuses with 486 and never uses 100rel; `timed`
 * sends early media and runs session timers of 2 s.
 */
let auto: Server;
let busy: Server;
let timed: Server;
const port: Record<'auto' | 'busy' | 'timed', number> = { auto: 0, busy: 0, timed: 0 };

beforeAll(async () => {
  auto = serve([]);
  busy = serve(['--answer', 'busy', '--prack', 'never']);
  timed = serve(['--early-media', '--session-expires', '2', '--min-se', '1']);
  [port.auto, port.busy, port.timed] = await Promise.all([
    auto.port('udp'),
    busy.port('udp'),
    timed.port('udp'),
  ]);
}, 20_000);

afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  killAll();
});

/** The labels of the ladder's arrows, with their direction (`>` sent, `<` received). */
function arrows(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => /^\d\d:\d\d:\d\d\.\d{3} /.test(l))
    .map((l) => {
      const label = /-([A-Z0-9][\w ]*[a-zA-Z0-9])-/.exec(l)?.[1] ?? '?';
      return `${l.includes('<-') ? '<' : '>'} ${label}`;
    });
}

describe('sipworks refer (RFC 3515 §2.4.1, §2.4.5)', () => {
  it('prints each sipfrag NOTIFY (one JSON line each) and exits 0 on a final 2xx, 1 on a final failure', async () => {
    const [p, q] = [port.auto, port.busy];
    // Each server is asked to call its own endpoint: the referred call is answered by one
    // and refused (486) by the other.
    const [good, bad] = await Promise.all([
      sipworks(['refer', `sip:127.0.0.1:${p}`, '--to', `sip:echo@127.0.0.1:${p}`, '--json']),
      sipworks(['refer', `sip:127.0.0.1:${q}`, '--to', `sip:echo@127.0.0.1:${q}`]),
    ]);
    expect(good.code, good.stderr).toBe(0);
    const events = jsonLines(good.stdout);
    const notifies = events.filter((e) => e.event === 'notify');
    expect(notifies.map((e) => e.status)).toEqual([100, 180, 200]);
    expect(notifies.at(-1)).toMatchObject({ final: true, reason: 'OK' });
    expect(String(notifies.at(-1)?.state)).toMatch(/^terminated/);
    expect(events.find((e) => e.event === 'response')).toMatchObject({
      status: 202,
      method: 'REFER',
    });
    expect(events.at(-1)).toMatchObject({ event: 'result', command: 'refer', exitCode: 0 });
    await auto.waitFor((e) => e.event === 'log' && /asks the server to call/.test(`${e.message}`));

    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/^SIP\/2\.0 202 Accepted$/m);
    expect(bad.stdout).toMatch(/^NOTIFY SIP\/2\.0 100 Trying \(active/m);
    expect(bad.stdout).toMatch(/^NOTIFY SIP\/2\.0 486 Busy Here \(terminated/m);
    expect(bad.stderr).toMatch(/the referred call to sip:echo@127\.0\.0\.1:\d+ failed: 486/);
  });

  it('refer without --to is a usage error (exit 2)', async () => {
    const r = await sipworks(['refer', 'sip:127.0.0.1:5060']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refer needs --to URI/);
  });

  it('serve performs a REFER in a call to its endpoint: it calls the target, NOTIFYs 100/180/200, and hangs up on the referrer (RFC 3515 §2.4.2, RFC 5589 §6)', async () => {
    const target = `sip:echo@127.0.0.1:${port.auto}`;
    const stack = new SipStack();
    stacks.push(stack);
    await stack.addTransport(new UdpTransport({ address: '127.0.0.1', port: 0 }));
    await stack.start();
    const dum = new DialogUsageManager({ stack });
    const profile = dum.makeUserProfile({ aor: 'sip:alice@127.0.0.1' });
    const progress: (SipfragStatus | undefined)[] = [];
    const ended: EndReason[] = [];
    let accepted = 0;
    dum.setInviteSessionHandler({
      onConnected: (h) => h.get().refer(target),
      onReferAccepted: (_h, _sub, res) => {
        accepted = res.status;
      },
      onReferProgress: (_h, _sub, status) => progress.push(status),
      onTerminated: (_h, reason) => ended.push(reason),
    });
    dum.send<ClientInviteSession>(
      dum.makeInviteSession(target, profile, {
        body: makeOffer('127.0.0.1'),
      }),
    );
    const until = Date.now() + 8000;
    while (ended.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(accepted).toBe(202);
    expect(progress.map((p) => p?.status)).toEqual([100, 180, 200]);
    // The server hung up after the transfer worked: the session ends as `referred`.
    expect(ended).toEqual(['referred']);
    await auto.waitFor((e) => e.event === 'log' && /transfer done/.test(`${e.message}`));
  });
});

describe('reliable provisional responses (RFC 3262) and session timers (RFC 4028)', () => {
  it('serve sends a reliable 180 to a caller with 100rel (PRACK in the ladder), an unreliable one to call --prack never; serve --prack never answers call --prack required with 420', async () => {
    const p = port.auto;
    const [a, b, c] = await Promise.all([
      sipworks(['call', `sip:echo@127.0.0.1:${p}`, '--duration', '0.1', '--trace']),
      sipworks([
        'call',
        `sip:echo@127.0.0.1:${p}`,
        '--duration',
        '0.1',
        '--trace',
        '--prack',
        'never',
      ]),
      sipworks(['call', `sip:echo@127.0.0.1:${port.busy}`, '--prack', 'required']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    const withPrack = arrows(a.stdout);
    expect(
      inOrder(withPrack, ['> INVITE', '< 180 Ringing', '> PRACK', '< 200 OK', '> ACK', '> BYE']),
      withPrack.join(', '),
    ).toBe(true);
    // The PRACK's 200, the INVITE's (either first: RFC 3262 §3 lets the held 2xx go once
    // the PRACK is in) and the BYE's.
    expect(withPrack.filter((x) => x === '< 200 OK').length).toBeGreaterThanOrEqual(3);
    expect(b.code, b.stderr).toBe(0);
    const without = arrows(b.stdout);
    expect(without).not.toContain('> PRACK');
    expect(
      inOrder(without, ['> INVITE', '< 180 Ringing', '< 200 OK', '> ACK', '> BYE', '< 200 OK']),
      without.join(', '),
    ).toBe(true);
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/^SIP\/2\.0 420 Bad Extension/m);
  });

  it('--early-media with 100rel: the 183 with the answer is sent reliably and PRACKed before the 200', async () => {
    const r = await sipworks([
      'call',
      `sip:echo@127.0.0.1:${port.timed}`,
      '--duration',
      '0.1',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const events = jsonLines(r.stdout);
    const sent = events.filter((e) => e.event === 'sent').map((e) => String(e.label));
    const received = events.filter((e) => e.event === 'received').map((e) => String(e.label));
    expect(inOrder(sent, ['INVITE', 'PRACK', 'ACK', 'BYE']), sent.join(', ')).toBe(true);
    // The PRACK's 200 comes before the INVITE's: the 2xx waits for the PRACK (RFC 3262 §3).
    expect(
      inOrder(received, ['183 Session Progress', '200 OK', '200 OK']),
      received.join(', '),
    ).toBe(true);
    expect(events.some((e) => e.event === 'early-media' && e.status === 183)).toBe(true);
  });

  it('--session-expires: the caller refreshes with UPDATE when both have timers; the server refreshes when the caller has none', async () => {
    const target = `sip:echo@127.0.0.1:${port.timed}`;
    const timers = ['--session-expires', '2', '--min-se', '1'];
    const [both, serverOnly] = await Promise.all([
      // 3.2 s: refreshes at about 1 s and 2 s (each restarts the timer when answered).
      sipworks(['call', target, '--duration', '3.2', '--trace', ...timers]),
      sipworks(['call', target, '--duration', '3.2', '--trace']),
    ]);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toMatch(/session timer 2 s, refreshed by us/);
    const ours = arrows(both.stdout);
    // Refreshes every second (half the interval), each answered 200 (§9, §10).
    expect(ours.filter((a) => a === '> UPDATE').length).toBeGreaterThanOrEqual(2);
    expect(ours.at(-2)).toBe('> BYE');

    expect(serverOnly.code, serverOnly.stderr).toBe(0);
    expect(serverOnly.stdout).not.toMatch(/session timer/);
    const theirs = arrows(serverOnly.stdout);
    expect(
      theirs.filter((a) => a === '< UPDATE' || a === '< INVITE').length,
    ).toBeGreaterThanOrEqual(2);
  });
});
