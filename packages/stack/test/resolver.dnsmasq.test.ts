/**
 * RFC 3263 transport selection against a real DNS server: dnsmasq, started here on
 * 127.0.0.1 and a free UDP port, serving NAPTR, SRV, A and AAAA records for example.test.
 *
 * Without dnsmasq the suite is skipped with a warning, except when CI=true, where a
 * missing dnsmasq fails it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseUri } from '@sipworks/message';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DnsResolver,
  nodeDnsResolver,
  type ResolvedTarget,
  ResolveError,
  resolveTargets,
} from '../src/resolver.ts';

const CI = process.env.CI === 'true';
const DNSMASQ = findDnsmasq();

if (DNSMASQ === undefined && !CI) {
  console.warn(
    'resolver.dnsmasq.test.ts skipped: dnsmasq is not installed ' +
      '(apt-get install dnsmasq); with CI=true this suite fails instead',
  );
}

/**
 * The zone. NAPTR prefers TCP over UDP (same order, preference 10 < 20) and offers TLS at a
 * higher order; SRV records use two priorities, and _sip._udp has two weighted records in
 * its first priority.
 */
const RECORDS = [
  '--local=/example.test/',
  '--naptr-record=example.test,10,20,s,SIP+D2U,,_sip._udp.example.test',
  '--naptr-record=example.test,10,10,s,SIP+D2T,,_sip._tcp.example.test',
  '--naptr-record=example.test,20,10,s,SIPS+D2T,,_sips._tcp.example.test',
  '--srv-host=_sip._tcp.example.test,sip2.example.test,5080,20,0',
  '--srv-host=_sip._tcp.example.test,sip1.example.test,5070,10,0',
  '--srv-host=_sip._udp.example.test,sip1.example.test,5060,10,60',
  '--srv-host=_sip._udp.example.test,sip3.example.test,5060,10,40',
  '--srv-host=_sip._udp.example.test,sip2.example.test,5060,20,0',
  '--srv-host=_sips._tcp.example.test,sip1.example.test,5061,10,0',
  // No NAPTR here: the SRV fallback of RFC 3263 §4.1 finds TCP only.
  '--srv-host=_sip._tcp.srvonly.example.test,sip2.example.test,5090,10,0',
  // An SRV record with no target: "service not available" (RFC 2782 ".").
  '--srv-host=_sip._udp.down.example.test',
  '--host-record=down.example.test,192.0.2.99',
  '--host-record=sip1.example.test,192.0.2.11,2001:db8::11',
  '--host-record=sip2.example.test,192.0.2.12',
  '--host-record=sip3.example.test,192.0.2.13',
  '--host-record=plain.example.test,192.0.2.20,2001:db8::20',
];

interface Dnsmasq {
  port: number;
  stop(): Promise<void>;
}

let server: Dnsmasq | undefined;
let dns: DnsResolver;

describe.skipIf(DNSMASQ === undefined && !CI)('RFC 3263 against dnsmasq', () => {
  beforeAll(async () => {
    if (DNSMASQ === undefined) {
      throw new Error(
        'CI=true but dnsmasq is not installed: install it (apt-get install -y dnsmasq) ' +
          'so the RFC 3263 tests against a real DNS server can run',
      );
    }
    server = await startDnsmasq(DNSMASQ);
    dns = nodeDnsResolver({ servers: [`127.0.0.1:${server.port}`], timeoutMs: 500, tries: 2 });
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    server = undefined;
  }, 10_000);

  const resolve = async (uri: string, available: readonly string[], random = () => 0) =>
    (await resolveTargets(parseUri(uri), { resolver: dns, available, random })).map(line);

  it('§4.1 NAPTR (TCP preferred over UDP), SRV priorities and weights, A then AAAA', async () => {
    expect(await resolve('sip:alice@example.test', ['UDP', 'TCP'])).toEqual([
      'TCP 192.0.2.11:5070',
      'TCP [2001:db8::11]:5070',
      'TCP 192.0.2.12:5080',
      'UDP 192.0.2.11:5060',
      'UDP [2001:db8::11]:5060',
      'UDP 192.0.2.13:5060',
      'UDP 192.0.2.12:5060',
    ]);
  });

  it('RFC 2782 a high draw picks the lighter record of the first priority first', async () => {
    // Priority 10 of _sip._udp: sip1 (60, running sum 60), sip3 (40, sum 100); 0.99 draws 99.
    expect(await resolve('sip:example.test', ['UDP'], () => 0.99)).toEqual([
      'UDP 192.0.2.13:5060',
      'UDP 192.0.2.11:5060',
      'UDP [2001:db8::11]:5060',
      'UDP 192.0.2.12:5060',
    ]);
  });

  it('§4.1 with TLS available the SIPS+D2T record comes after the order-10 ones', async () => {
    const lines = await resolve('sip:example.test', ['UDP', 'TCP', 'TLS']);
    expect(lines.slice(-2)).toEqual(['TLS 192.0.2.11:5061', 'TLS [2001:db8::11]:5061']);
    expect(lines).toHaveLength(9);
  });

  it('§4.1 a sips URI follows the SIPS+D2T record only', async () => {
    expect(await resolve('sips:bob@example.test', ['UDP', 'TCP', 'TLS'])).toEqual([
      'TLS 192.0.2.11:5061',
      'TLS [2001:db8::11]:5061',
    ]);
  });

  it('§4.2 transport=tcp queries _sip._tcp directly', async () => {
    expect(await resolve('sip:example.test;transport=tcp', ['UDP', 'TCP'])).toEqual([
      'TCP 192.0.2.11:5070',
      'TCP [2001:db8::11]:5070',
      'TCP 192.0.2.12:5080',
    ]);
  });

  it('§4.1 no NAPTR: the SRV queries per transport find TCP only', async () => {
    expect(await resolve('sip:srvonly.example.test', ['UDP', 'TCP', 'TLS'])).toEqual([
      'TCP 192.0.2.12:5090',
    ]);
  });

  it('§4.2 no NAPTR and no SRV: A and AAAA with UDP on 5060', async () => {
    expect(await resolve('sip:plain.example.test', ['UDP', 'TCP'])).toEqual([
      'UDP 192.0.2.20:5060',
      'UDP [2001:db8::20]:5060',
    ]);
  });

  it('§4.2 an explicit port skips NAPTR and SRV', async () => {
    expect(await resolve('sip:sip2.example.test:5099', ['UDP'])).toEqual(['UDP 192.0.2.12:5099']);
  });

  it('RFC 2782 an SRV record without target means the service is not available', async () => {
    const err = await resolve('sip:down.example.test;transport=udp', ['UDP']).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as ResolveError).queries.map((q) => q.type)).toEqual(['SRV']);
  });

  it('an unknown name in the local domain (NXDOMAIN) is a ResolveError without failures', async () => {
    const err = await resolve('sip:nowhere.example.test', ['UDP']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as ResolveError).failures).toEqual([]);
    expect((err as ResolveError).message).toContain('A nowhere.example.test: no records');
  });

  it('a refused query is recorded and named in the ResolveError', async () => {
    const err = await resolve('sip:elsewhere.invalid', ['UDP']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResolveError);
    const e = err as ResolveError;
    expect(e.code).toBe('SIP_ERR_RESOLVE');
    expect(e.failures.length).toBeGreaterThan(0);
    expect(e.message).toMatch(/NAPTR elsewhere\.invalid: E[A-Z]+/);
  });
});

function line(t: ResolvedTarget): string {
  return `${t.protocol} ${t.family === 'IPv6' ? `[${t.address}]` : t.address}:${t.port}`;
}

function findDnsmasq(): string | undefined {
  const dirs = [
    '/usr/sbin',
    '/usr/local/sbin',
    '/sbin',
    ...(process.env.PATH ?? '').split(delimiter),
  ];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, 'dnsmasq');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** A UDP port that was free a moment ago: bind port 0, read it, close. */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Start dnsmasq and wait until it answers; a few attempts in case the port got taken. */
async function startDnsmasq(path: string): Promise<Dnsmasq> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeUdpPort();
    const child = spawn(
      path,
      [
        '--no-daemon',
        '--keep-in-foreground',
        '--no-resolv',
        '--no-hosts',
        `--port=${port}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--conf-file=/dev/null',
        '--pid-file',
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
        ...RECORDS,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const stop = () => stopChild(child);
    try {
      await waitUntilAnswering(child, port);
      return { port, stop };
    } catch (err) {
      lastError = err;
      await stop();
    }
  }
  throw lastError;
}

/** Poll with a short-timeout query, a bounded number of times. */
async function waitUntilAnswering(child: ChildProcess, port: number): Promise<void> {
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const probe = nodeDnsResolver({ servers: [`127.0.0.1:${port}`], timeoutMs: 200, tries: 1 });
  for (let i = 0; i < 50; i++) {
    if (spawnError !== undefined) throw new Error(`dnsmasq could not start: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dnsmasq exited (${child.exitCode ?? child.signalCode}): ${output.trim()}`);
    }
    try {
      const a = await probe.resolve4('sip1.example.test');
      if (a.includes('192.0.2.11')) return;
    } catch {
      // not answering yet
    }
    await sleep(100);
  }
  throw new Error(
    `dnsmasq on 127.0.0.1:${port} did not answer within the polling budget: ${output.trim()}`,
  );
}

/** SIGTERM, then SIGKILL after 3 s; never waits more than 5 s in all. */
async function stopChild(child: ChildProcess): Promise<void> {
  const done = () => child.exitCode !== null || child.signalCode !== null;
  if (done() || child.pid === undefined) return;
  const exited = (ms: number) =>
    new Promise<boolean>((resolve) => {
      if (done()) return resolve(true);
      const timer = setTimeout(() => resolve(done()), ms);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  child.kill('SIGTERM');
  if (await exited(3000)) return;
  child.kill('SIGKILL');
  await exited(2000);
}
