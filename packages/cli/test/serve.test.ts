import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteRegistrationPersistence } from '@sipworks/dum';
import { RedisServerProcess, redisServerRequirement } from '@sipworks/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { externalTool, inOrder, jsonLines, killAll, Server, sipworks } from './support.ts';

/** `sipworks serve` options that change how it answers, where it keeps bindings, and TLS. */
let dir: string;
const servers: Server[] = [];
const serve = (args: string[]) => {
  const s = new Server(args);
  servers.push(s);
  return s;
};

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sipworks-serve-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  killAll();
});

describe('serve as an endpoint: --answer, --early-media (RFC 3261 §13.3.1, RFC 3264)', () => {
  it('--answer busy: the call exits 1 and prints 486 Busy Here; --prack and --session-expires are accepted', async () => {
    const s = serve([
      '--listen',
      'udp:127.0.0.1:0',
      '--answer',
      'busy',
      '--prack',
      'supported',
      '--session-expires',
      '1800',
    ]);
    const port = await s.port('udp');
    const r = await sipworks(['call', `sip:bob@127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^SIP\/2\.0 486 Busy Here/m);
    expect(r.stderr).toMatch(/call failed: 486 Busy Here/);
  });

  it('--early-media: 183 with the SDP answer (reliable: the caller has 100rel, RFC 3262), then 200; the trace draws the ladder', async () => {
    const s = serve(['--listen', 'tcp:127.0.0.1:0', '--early-media', '--answer-delay', '50']);
    const port = await s.port('tcp');
    const r = await sipworks([
      'call',
      `sip:bob@127.0.0.1:${port}`,
      '--transport',
      'tcp',
      '--duration',
      '0.1',
      '--trace',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`127\\.0\\.0\\.1:\\d+\\s+127\\.0\\.0\\.1:${port}$`));
    const arrows = lines
      .filter((l) => /^\d\d:\d\d:\d\d\.\d{3} /.test(l))
      .map((l) => l.replace(/^\S+\s+/, ''));
    const labels = arrows.map(
      (a) => /[A-Z0-9][\w ]*[a-zA-Z0-9]/.exec(a.replace(/\| TCP$/, '|'))?.[0] ?? '',
    );
    // In order (a loaded machine may add a resent reliable 183 before its PRACK). The
    // PRACK's 200 and the INVITE's come in either order: once the PRACK is in, the held
    // 2xx may go first (RFC 3262 §3).
    expect(
      inOrder(labels, [
        'INVITE',
        '183 Session Progress',
        'PRACK',
        '200 OK',
        'ACK',
        'BYE',
        '200 OK',
      ]),
      labels.join(', '),
    ).toBe(true);
    expect(labels.filter((l) => l === '200 OK').length, labels.join(', ')).toBe(3);
    expect(labels.filter((l) => l === 'INVITE' || l === 'BYE')).toEqual(['INVITE', 'BYE']);
    expect(arrows[0]).toMatch(/\|-+INVITE-+>\| TCP$/);
    expect(arrows[1]).toMatch(/\|<-+183 Session Progress-+\| TCP$/);
  });

  it('--answer ring: the caller gives up after --timeout, CANCELs, and exits 3 (RFC 3261 §9.1)', async () => {
    const s = serve(['--listen', 'udp:127.0.0.1:0', '--answer', 'ring']);
    const port = await s.port('udp');
    const r = await sipworks(['call', `sip:bob@127.0.0.1:${port}`, '--timeout', '1', '--json']);
    expect(r.code).toBe(3);
    const received = jsonLines(r.stdout)
      .filter((e) => e.event === 'received')
      .map((e) => e.label);
    expect(received).toContain('180 Ringing');
    await s.waitFor((e) => e.event === 'request' && e.method === 'CANCEL');
  });
});

describe("serve relays through a binding's Path (RFC 3327 §5.3)", () => {
  it('a MESSAGE for a contact registered with Path goes to the first Path hop, with the Path as Route', async () => {
    const s = serve(['--listen', 'udp:127.0.0.1:0']);
    const port = await s.port('udp');
    // The edge proxy the REGISTER came through: a UDP socket of the test.
    const edge = dgram.createSocket('udp4');
    const got: string[] = [];
    edge.on('message', (m) => got.push(m.toString('utf8')));
    await new Promise<void>((r) => edge.bind(0, '127.0.0.1', () => r()));
    const edgePort = edge.address().port;
    const until = async (pred: (m: string) => boolean, what: string): Promise<string> => {
      for (let i = 0; i < 250; i++) {
        const hit = got.find(pred);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`the edge proxy got no ${what}: ${got.join('\n---\n')}`);
    };
    try {
      edge.send(
        [
          `REGISTER sip:127.0.0.1:${port} SIP/2.0`,
          `Via: SIP/2.0/UDP 127.0.0.1:${edgePort};branch=z9hG4bKedge1`,
          'Max-Forwards: 69',
          'From: <sip:bob@127.0.0.1>;tag=e1',
          'To: <sip:bob@127.0.0.1>',
          'Call-ID: path-reg-1',
          'CSeq: 1 REGISTER',
          // Port 9 (discard): nothing answers there; only the edge can reach bob.
          'Contact: <sip:bob@127.0.0.1:9>',
          `Path: <sip:127.0.0.1:${edgePort};lr>`,
          'Supported: path',
          'Expires: 60',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
        port,
        '127.0.0.1',
      );
      const ok = await until((m) => m.startsWith('SIP/2.0 200'), '200 to the REGISTER');
      expect(ok).toMatch(new RegExp(`^Path: <sip:127\\.0\\.0\\.1:${edgePort};lr>`, 'm'));

      const sent = sipworks(['message', `sip:bob@127.0.0.1:${port}`, 'via the edge']);
      const relayed = await until((m) => m.startsWith('MESSAGE '), 'relayed MESSAGE');
      expect(relayed.split('\r\n')[0]).toBe('MESSAGE sip:bob@127.0.0.1:9 SIP/2.0');
      expect(relayed).toMatch(new RegExp(`^Route: <sip:127\\.0\\.0\\.1:${edgePort};lr>`, 'm'));
      // Answer it as bob would, through the edge: the sender then exits 0.
      const head = relayed.split('\r\n\r\n')[0]?.split('\r\n') ?? [];
      const keep = head.filter((l) => /^(Via|From|Call-ID|CSeq):/i.test(l));
      const to = head.find((l) => /^To:/i.test(l));
      edge.send(
        ['SIP/2.0 200 OK', ...keep, `${to};tag=bob1`, 'Content-Length: 0', '', ''].join('\r\n'),
        port,
        '127.0.0.1',
      );
      const r = await sent;
      expect(r.code, r.stderr).toBe(0);
    } finally {
      edge.close();
    }
  });
});

describe('serve --store sqlite:PATH (RFC 3261 §10.3 bindings kept across a restart)', () => {
  it('keeps the binding in the SQLite file after serve stops', async () => {
    const db = path.join(dir, 'bindings.db');
    const s = serve(['--listen', 'udp:127.0.0.1:0', '--store', `sqlite:${db}`]);
    const port = await s.port('udp');
    const r = await sipworks([
      'register',
      'sip:carol@127.0.0.1',
      '--registrar',
      `sip:127.0.0.1:${port}`,
      '--contact',
      'sip:carol@192.0.2.7:5060',
      '--expires',
      '300',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(await s.stop()).toBe(0);
    const store = await SqliteRegistrationPersistence.open(db);
    try {
      const bindings = await store.getContacts('sip:carol@127.0.0.1');
      expect(bindings.map((x) => x.contact.uri.toString())).toEqual(['sip:carol@192.0.2.7:5060']);
      expect(bindings[0]?.expires).toBeGreaterThan(Date.now() + 250_000);
    } finally {
      store.close();
    }
  });
});

const redis = redisServerRequirement('cli');

describe.skipIf(redis.skip)(
  'serve --store redis://HOST:PORT (RFC 3261 §10.3 bindings shared by several nodes)',
  () => {
    let server: RedisServerProcess | undefined;
    beforeAll(async () => {
      redis.assertAvailable();
      server = await RedisServerProcess.start(redis.binary);
      return () => server?.stop();
    });

    it('a user registered through one node is reached through the other; another prefix does not see it', async () => {
      const store = `${server?.url}/0?prefix=cli-test:`;
      const phone = serve(['--listen', 'udp:127.0.0.1:0']);
      const a = serve(['--listen', 'udp:127.0.0.1:0', '--store', store]);
      const b = serve(['--listen', 'udp:127.0.0.1:0', '--store', store]);
      const other = serve([
        '--listen',
        'udp:127.0.0.1:0',
        '--store',
        `${server?.url}?prefix=elsewhere:`,
      ]);
      const [phonePort, aPort, bPort, otherPort] = await Promise.all([
        phone.port('udp'),
        a.port('udp'),
        b.port('udp'),
        other.port('udp'),
      ]);
      const reg = await sipworks([
        'register',
        'sip:bob@127.0.0.1',
        '--registrar',
        `sip:127.0.0.1:${aPort}`,
        '--contact',
        `sip:bob@127.0.0.1:${phonePort}`,
      ]);
      expect(reg.code, reg.stderr).toBe(0);
      await a.waitFor((e) => e.event === 'log' && /^registered sip:bob@/.test(String(e.message)));

      // Node b never saw the REGISTER: it finds the binding in Redis and relays (RFC 3428 §5).
      const msg = await sipworks(['message', `sip:bob@127.0.0.1:${bPort}`, 'through b']);
      expect(msg.code, msg.stderr).toBe(0);
      await phone.waitFor((e) => e.event === 'log' && e.text === 'through b');
      await b.waitFor(
        (e) => e.event === 'log' && /^relayed MESSAGE .* 200 OK$/.test(String(e.message)),
      );

      // A node on another prefix is another deployment: bob is not registered there.
      const own = await sipworks(['message', `sip:bob@127.0.0.1:${otherPort}`, 'to other']);
      expect(own.code, own.stderr).toBe(0);
      await other.waitFor((e) => e.event === 'log' && e.text === 'to other');
      expect(phone.events.some((e) => e.text === 'to other')).toBe(false);

      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
    });

    it('an unreachable Redis stops serve at start with exit 3 and a hint; a bad URL is a usage error', async () => {
      const down = await sipworks(
        ['serve', '--listen', 'udp:127.0.0.1:0', '--store', 'redis://127.0.0.1:1'],
        20_000,
      );
      expect(down.code).toBe(3);
      expect(down.stderr).toMatch(
        /cannot reach the Redis store redis:\/\/127\.0\.0\.1:1.*start redis-server/,
      );
      // A password in the URL is not printed.
      const secret = await sipworks(
        ['serve', '--listen', 'udp:127.0.0.1:0', '--store', 'redis://:hunter2@127.0.0.1:1'],
        20_000,
      );
      expect(secret.code).toBe(3);
      expect(secret.stderr).toContain('redis://:***@127.0.0.1:1');
      expect(secret.stderr).not.toContain('hunter2');
      const bad = await sipworks(['serve', '--store', 'redis://127.0.0.1:6379/x']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(
        /--store redis:\/\/127\.0\.0\.1:6379\/x: the database after the port must be a number/,
      );
    });
  },
);

const openssl = externalTool('openssl', ['version'], 'apt-get install openssl');

describe.skipIf(openssl.skip)('serve over TLS and WSS (RFC 3261 §26.2, RFC 7118)', () => {
  it('OPTIONS over tls and wss succeed with --ca, and fail with exit 3 and a hint without it', async () => {
    if (!openssl.available) throw new Error(`openssl is needed in CI: ${openssl.reason}`);
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore', timeout: 20_000 },
    );
    const s = serve([
      '--listen',
      'tls:127.0.0.1:0',
      '--listen',
      'wss:127.0.0.1:0',
      '--cert',
      cert,
      '--key',
      key,
    ]);
    const tls = await s.port('tls');
    const wss = await s.port('wss');
    const [a, b, c] = await Promise.all([
      sipworks(['options', `sip:127.0.0.1:${tls}`, '--transport', 'tls', '--ca', cert]),
      sipworks(['options', `sip:127.0.0.1:${wss}`, '--transport', 'wss', '--ca', cert]),
      sipworks(['options', `sip:127.0.0.1:${tls}`, '--transport', 'tls']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(c.code).toBe(3);
    expect(c.stderr).toMatch(/certificate was not accepted.*--ca FILE.*--insecure/);
  });
});

describe('serve --digest and --quiet (RFC 7616 §3.7, RFC 8760 §2.4)', () => {
  it('--digest MD5 challenges with MD5 only, and the client authenticates with it; --quiet prints no request line', async () => {
    const users = path.join(dir, 'digest-users.txt');
    writeFileSync(users, 'alice:alice-pw\n');
    const s = serve([
      '--listen',
      'udp:127.0.0.1:0',
      '--users',
      users,
      '--digest',
      'md5',
      '--quiet',
    ]);
    const port = await s.port('udp');
    const r = await sipworks([
      'register',
      'sip:alice@127.0.0.1',
      '--registrar',
      `sip:127.0.0.1:${port}`,
      '--user',
      'alice',
      '--password',
      'alice-pw',
      '--trace=full',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const challenges = `${r.stdout}\n${r.stderr}`.match(/WWW-Authenticate:.*$/gim) ?? [];
    expect(challenges).toHaveLength(1);
    expect(challenges[0]).toMatch(/algorithm=MD5/);
    expect(s.events.map((e) => e.event)).toContain('listening');
    expect(s.events.filter((e) => e.event === 'request' || e.event === 'log')).toEqual([]);
  });

  it('--digest with an unknown algorithm is a usage error', async () => {
    const r = await sipworks(['serve', '--digest', 'SHA-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'SHA-1' is not one of SHA-512-256, SHA-256, MD5/);
  });
});
