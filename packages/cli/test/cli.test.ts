import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, killAll, running, Server, sipworks } from './support.ts';

/**
 * The `sipworks` command run as a user runs it (node + tsx, from the working tree)
 * against `sipworks serve`: one server with digest auth on UDP, TCP and WebSocket, and a
 * second one without auth standing in for bob's phone (his registered contact).
 */
let dir: string;
let server: Server;
let phone: Server;
const ports: Record<string, number> = {};
let phonePort = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sipworks-cli-'));
  writeFileSync(path.join(dir, 'users'), '# test users\nalice:alice-pw\nbob:bob-pw\n');
  server = new Server([
    '--listen',
    'udp:127.0.0.1:0',
    '--listen',
    'tcp:127.0.0.1:0',
    '--listen',
    'ws:127.0.0.1:0',
    '--users',
    path.join(dir, 'users'),
  ]);
  phone = new Server(['--listen', 'udp:127.0.0.1:0', '--answer-delay', '50']);
  for (const t of ['udp', 'tcp', 'ws']) ports[t] = await server.port(t);
  phonePort = await phone.port('udp');
}, 20_000);

afterEach(() => {
  // Client runs end by themselves; anything still running here hung: stop it.
  for (const c of running) if (c !== server.child && c !== phone.child) c.kill('SIGKILL');
});

afterAll(async () => {
  const codes = await Promise.all([server?.stop(), phone?.stop()]);
  killAll();
  rmSync(dir, { recursive: true, force: true });
  // SIGTERM stops `serve` cleanly (dum.shutdown), exit status 0.
  expect(codes).toEqual([0, 0]);
});

const alice = ['--user', 'alice', '--password', 'alice-pw'];
const at = (t: string, user = '') => `sip:${user ? `${user}@` : ''}127.0.0.1:${ports[t]}`;

describe.each(['udp', 'tcp', 'ws'])('client commands against serve over %s', (t) => {
  const tp = ['--transport', t, '--json'];

  it('register with digest auth exits 0, a wrong password exits 1 with the 401 (RFC 3261 §10.2, §22.2)', async () => {
    const [ok, bad] = await Promise.all([
      sipworks([
        'register',
        'sip:alice@127.0.0.1',
        '--registrar',
        at(t),
        '--expires',
        '120',
        ...alice,
        ...tp,
      ]),
      sipworks([
        'register',
        'sip:alice@127.0.0.1',
        '--registrar',
        at(t),
        '--user',
        'alice',
        '--password',
        'nope',
        ...tp,
      ]),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const result = jsonLines(ok.stdout).find((e) => e.event === 'result');
    expect(result).toMatchObject({ command: 'register', ok: true, status: 200, expires: 120 });
    expect(
      jsonLines(ok.stdout)
        .filter((e) => e.event === 'received')
        .map((e) => e.label),
    ).toEqual(['401 Unauthorized', '200 OK']);
    expect(bad.code).toBe(1);
    expect(jsonLines(bad.stdout).find((e) => e.event === 'result')).toMatchObject({
      status: 401,
      ok: false,
    });
    expect(bad.stderr).toMatch(/credentials were refused: check --user and --password/);
  });

  it('options, message, publish and subscribe exit 0 and report what they saw (RFC 3261 §11, RFC 3428, RFC 3903, RFC 6665)', async () => {
    const [options, message, publish] = await Promise.all([
      sipworks(['options', at(t), ...alice, ...tp]),
      sipworks(['message', at(t, 'nobody'), `hello over ${t}`, ...alice, ...tp]),
      sipworks([
        'publish',
        at(t, 'alice'),
        '--event',
        'presence',
        '--status',
        'open',
        '--expires',
        '120',
        ...alice,
        ...tp,
      ]),
    ]);
    for (const r of [options, message, publish]) expect(r.code, r.stderr).toBe(0);
    const o = jsonLines(options.stdout).find((e) => e.event === 'result');
    expect(o).toMatchObject({
      command: 'options',
      status: 200,
      reason: 'OK',
      ok: true,
      exitCode: 0,
    });
    expect(String(o?.allow)).toMatch(/REGISTER/);
    expect(typeof o?.elapsedMs).toBe('number');
    expect(jsonLines(publish.stdout).find((e) => e.event === 'result')?.etag).toBeTruthy();
    await server.waitFor((e) => e.event === 'log' && e.text === `hello over ${t}`);

    const sub = await sipworks([
      'subscribe',
      at(t, 'alice'),
      '--event',
      'presence',
      '--duration',
      '0.3',
      ...alice,
      ...tp,
    ]);
    expect(sub.code, sub.stderr).toBe(0);
    const notify = jsonLines(sub.stdout).find((e) => e.event === 'notify');
    expect(notify?.state).toMatch(/^active/);
    expect(String(notify?.body)).toContain('<basic>open</basic>');
  });

  it('call to a registered user is bridged by the server (B2BUA): 180, 200, BYE on both legs (RFC 3261 §13, §15)', async () => {
    const reg = await sipworks([
      'register',
      'sip:bob@127.0.0.1',
      '--registrar',
      at(t),
      '--contact',
      `sip:bob@127.0.0.1:${phonePort}`,
      '--user',
      'bob',
      '--password',
      'bob-pw',
      '--transport',
      t,
    ]);
    expect(reg.code, reg.stderr).toBe(0);
    const call = await sipworks(['call', at(t, 'bob'), '--duration', '0.3', ...alice, ...tp]);
    expect(call.code, call.stderr).toBe(0);
    const events = jsonLines(call.stdout);
    expect(events.filter((e) => e.event === 'received').map((e) => e.label)).toEqual(
      expect.arrayContaining(['401 Unauthorized', '180 Ringing', '200 OK']),
    );
    expect(events.find((e) => e.event === 'connected')?.answer).toMatch(
      /m=audio \d+ RTP\/AVP 0 8 101/,
    );
    expect(events.find((e) => e.event === 'result')).toMatchObject({
      ok: true,
      status: 200,
      endReason: 'local-bye',
    });
    // The phone answered the leg the server placed, and saw it end.
    await phone.waitFor(
      (e) =>
        e.event === 'request' && e.method === 'BYE' && e.from === `sip:alice@127.0.0.1:${ports[t]}`,
    );
  });
});

describe('relay and exit statuses', () => {
  it('a MESSAGE to a registered user is relayed to the contact, the sender gets its 200 (RFC 3428 §7)', async () => {
    const reg = await sipworks([
      'register',
      'sip:bob@127.0.0.1',
      '--registrar',
      at('udp'),
      '--contact',
      `sip:bob@127.0.0.1:${phonePort}`,
      '--user',
      'bob',
      '--password',
      'bob-pw',
    ]);
    expect(reg.code).toBe(0);
    const r = await sipworks(['message', at('udp', 'bob'), 'relay me', ...alice]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SIP\/2\.0 200 OK/);
    await phone.waitFor((e) => e.event === 'log' && e.text === 'relay me');
  });

  it('exits 1 and prints the status line when the peer refuses (401 without credentials)', async () => {
    const r = await sipworks(['options', at('udp')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^SIP\/2\.0 401 Unauthorized/m);
    expect(r.stderr).toMatch(/give --user NAME --password PW/);
  });

  it('exits 2 with the usage for a bad command line', async () => {
    const [none, unknown, badListen, missing] = await Promise.all([
      sipworks([]),
      sipworks(['options', at('udp'), '--bogus']),
      sipworks(['serve', '--listen', 'sctp:1.2.3.4:5']),
      sipworks(['register', 'sip:alice@127.0.0.1']),
    ]);
    for (const r of [none, unknown, badListen, missing]) {
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/Usage: sipworks COMMAND/);
    }
    expect(badListen.stderr).toMatch(/expected PROTOCOL:HOST:PORT/);
    expect(missing.stderr).toMatch(/needs --registrar URI/);
  });

  it('exits 3 on a timeout (UDP, nobody listening) and on a refused TCP connection', async () => {
    const [udp, tcp] = await Promise.all([
      sipworks(['options', 'sip:127.0.0.1:9', '--timeout', '1', '--json']),
      sipworks(['options', 'sip:127.0.0.1:9', '--transport', 'tcp', '--timeout', '1']),
    ]);
    expect(udp.code).toBe(3);
    expect(jsonLines(udp.stdout).find((e) => e.event === 'result')).toMatchObject({
      ok: false,
      exitCode: 3,
    });
    expect(udp.stderr).toMatch(/no final response within 1 s/);
    expect(tcp.code).toBe(3);
    expect(tcp.stderr).toMatch(/check the address, the port and the transport/);
  });
});
