import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteRegistrationPersistence } from '@sipworks/dum';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { externalTool, jsonLines, killAll, Server, sipworks } from './support.ts';

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

  it('--early-media: 183 with the SDP answer, then 200; the trace draws the ladder', async () => {
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
    expect(
      arrows.map((a) => /[A-Z0-9][\w ]*[a-zA-Z0-9]/.exec(a.replace(/\| TCP$/, '|'))?.[0]),
    ).toEqual(['INVITE', '183 Session Progress', '200 OK', 'ACK', 'BYE', '200 OK']);
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
