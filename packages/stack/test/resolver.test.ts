import { parseUri } from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import {
  type DnsResolver,
  type NaptrRecord,
  nodeDnsResolver,
  type ResolvedTarget,
  ResolveError,
  type ResolveOptions,
  resolveTargets,
  type SrvRecord,
} from '../src/resolver.ts';

/** An in-memory zone: records by owner name, and forced failures by "TYPE name". */
interface Zone {
  naptr?: Record<string, NaptrRecord[]>;
  srv?: Record<string, SrvRecord[]>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  fail?: Record<string, string>;
}

/** A DnsResolver over a `Zone` that logs every query ("SRV _sip._udp.example.com"). */
class FakeDns implements DnsResolver {
  readonly log: string[] = [];
  private readonly zone: Zone;

  constructor(zone: Zone) {
    this.zone = zone;
  }

  resolveNaptr(name: string): Promise<NaptrRecord[]> {
    return this.answer('NAPTR', name, this.zone.naptr);
  }
  resolveSrv(name: string): Promise<SrvRecord[]> {
    return this.answer('SRV', name, this.zone.srv);
  }
  resolve4(name: string): Promise<string[]> {
    return this.answer('A', name, this.zone.a);
  }
  resolve6(name: string): Promise<string[]> {
    return this.answer('AAAA', name, this.zone.aaaa);
  }

  private async answer<T>(type: string, name: string, table?: Record<string, T[]>): Promise<T[]> {
    this.log.push(`${type} ${name}`);
    const failure = this.zone.fail?.[`${type} ${name}`];
    if (failure !== undefined) throw dnsError(type, name, failure);
    const records = table?.[name];
    if (records !== undefined && records.length > 0) return structuredClone(records);
    // Like c-ares: NODATA when the name owns other records, NXDOMAIN when it owns none.
    const exists = [this.zone.naptr, this.zone.srv, this.zone.a, this.zone.aaaa].some(
      (t) => t?.[name] !== undefined,
    );
    throw dnsError(type, name, exists ? 'ENODATA' : 'ENOTFOUND');
  }
}

function dnsError(type: string, name: string, code: string): Error {
  return Object.assign(new Error(`query${type} ${code} ${name}`), { code });
}

const naptr = (
  order: number,
  preference: number,
  service: string,
  replacement: string,
  flags = 's',
): NaptrRecord => ({ order, preference, flags, service, regexp: '', replacement });

const srv = (priority: number, weight: number, port: number, name: string): SrvRecord => ({
  priority,
  weight,
  port,
  name,
});

/** A target as one line: "TCP 192.0.2.1:5060" or "UDP [2001:db8::1]:5060". */
function line(t: ResolvedTarget): string {
  const host = t.family === 'IPv6' ? `[${t.address}]` : t.address;
  return `${t.protocol} ${host}:${t.port}`;
}

/** A deterministic PRNG (mulberry32) for the weight distribution test. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Returns the given numbers in turn, then 0. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++] ?? 0;
}

const ALL = ['UDP', 'TCP', 'TLS'] as const;

async function resolve(
  uri: string,
  zone: Zone,
  options: Partial<Omit<ResolveOptions, 'resolver'>> = {},
): Promise<{ lines: string[]; targets: ResolvedTarget[]; log: string[] }> {
  const dns = new FakeDns(zone);
  const targets = await resolveTargets(parseUri(uri), {
    resolver: dns,
    available: ALL,
    random: () => 0,
    ...options,
  });
  return { lines: targets.map(line), targets, log: dns.log };
}

async function resolveError(uri: string, zone: Zone, available: readonly string[] = ALL) {
  const dns = new FakeDns(zone);
  const err = await resolveTargets(parseUri(uri), {
    resolver: dns,
    available,
    random: () => 0,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, log: dns.log };
}

/** A domain with NAPTR, SRV and host records, used by several tests. */
const example = {
  naptr: {
    'example.com': [
      naptr(10, 20, 'SIP+D2U', '_sip._udp.example.com'),
      naptr(20, 10, 'SIPS+D2T', '_sips._tcp.example.com'),
      naptr(10, 10, 'SIP+D2T', '_sip._tcp.example.com'),
    ],
  },
  srv: {
    '_sip._udp.example.com': [srv(10, 0, 5060, 'a.example.com')],
    '_sip._tcp.example.com': [srv(20, 0, 5060, 'b.example.com'), srv(10, 0, 5062, 'a.example.com')],
    '_sips._tcp.example.com': [srv(10, 0, 5061, 'a.example.com')],
    '_sip._sctp.example.com': [srv(10, 0, 5060, 'a.example.com')],
  },
  a: {
    'a.example.com': ['192.0.2.1'],
    'b.example.com': ['192.0.2.2'],
    'example.com': ['192.0.2.9'],
  },
  aaaa: { 'a.example.com': ['2001:DB8::1'] },
} satisfies Zone;

describe('RFC 3263 §4 TARGET and numeric addresses', () => {
  it('§4.1/§4.2 a sip URI with an IPv4 address: UDP, port 5060, no DNS', async () => {
    const r = await resolve('sip:alice@192.0.2.10', {});
    expect(r.targets).toEqual([
      {
        protocol: 'UDP',
        address: '192.0.2.10',
        port: 5060,
        family: 'IPv4',
        serverName: '192.0.2.10',
      },
    ]);
    expect(r.log).toEqual([]);
  });

  it('§4.1/§4.2 a sips URI with an IPv4 address: TLS, port 5061', async () => {
    const r = await resolve('sips:alice@192.0.2.10', {});
    expect(r.lines).toEqual(['TLS 192.0.2.10:5061']);
    expect(r.log).toEqual([]);
  });

  it('§4.2 a bracketed IPv6 address with a port and transport=tcp', async () => {
    const r = await resolve('sip:[2001:DB8::10]:5080;transport=tcp', {});
    expect(r.targets).toEqual([
      {
        protocol: 'TCP',
        address: '2001:db8::10',
        port: 5080,
        family: 'IPv6',
        serverName: '2001:db8::10',
      },
    ]);
    expect(r.log).toEqual([]);
  });

  it('§4.1 a sips URI with an IPv6 address and no port: TLS on 5061', async () => {
    const r = await resolve('sips:[2001:db8::10]', {});
    expect(r.lines).toEqual(['TLS [2001:db8::10]:5061']);
  });

  it('§4.2 default ports per transport: SCTP 5060, WS 80, WSS 443, sips;transport=tcp is TLS 5061', async () => {
    const available = ['UDP', 'TCP', 'TLS', 'SCTP', 'WS', 'WSS'];
    const cases: [string, string][] = [
      ['sip:192.0.2.1;transport=sctp', 'SCTP 192.0.2.1:5060'],
      ['sip:192.0.2.1;transport=ws', 'WS 192.0.2.1:80'],
      ['sip:192.0.2.1;transport=wss', 'WSS 192.0.2.1:443'],
      ['sips:192.0.2.1;transport=ws', 'WSS 192.0.2.1:443'],
      ['sips:192.0.2.1;transport=tcp', 'TLS 192.0.2.1:5061'],
      ['sip:192.0.2.1;transport=TLS', 'TLS 192.0.2.1:5061'],
      ['sip:192.0.2.1:5099;transport=ws', 'WS 192.0.2.1:5099'],
    ];
    for (const [uri, expected] of cases) {
      expect((await resolve(uri, {}, { available })).lines, uri).toEqual([expected]);
    }
  });

  it('§4 maddr is the TARGET: a numeric maddr needs no DNS, serverName stays the URI host', async () => {
    const r = await resolve('sip:alice@example.com:5070;maddr=192.0.2.77', example);
    expect(r.targets).toEqual([
      {
        protocol: 'UDP',
        address: '192.0.2.77',
        port: 5070,
        family: 'IPv4',
        serverName: 'example.com',
      },
    ]);
    expect(r.log).toEqual([]);
  });

  it('§4 an IPv6 maddr, bracketed or not', async () => {
    expect((await resolve('sip:example.com;maddr=[2001:db8::9]', {})).lines).toEqual([
      'UDP [2001:db8::9]:5060',
    ]);
    expect((await resolve('sip:example.com;maddr=2001:db8::9;transport=tcp', {})).lines).toEqual([
      'TCP [2001:db8::9]:5060',
    ]);
  });

  it('§4 a domain-name maddr is resolved instead of the host (§4.1 NAPTR on the maddr)', async () => {
    const r = await resolve('sip:alice@192.0.2.1;maddr=example.com', example);
    expect(r.lines[0]).toBe('TCP 192.0.2.1:5062');
    expect(r.log[0]).toBe('NAPTR example.com');
    expect(r.targets.every((t) => t.serverName === '192.0.2.1')).toBe(true);
  });
});

describe('RFC 3263 §4.2 explicit port: A/AAAA only', () => {
  it('§4.2 sip URI, domain and port: UDP to every address, no NAPTR or SRV', async () => {
    const zone: Zone = {
      a: { 'pbx.example.com': ['192.0.2.5', '192.0.2.6'] },
      aaaa: { 'pbx.example.com': ['2001:db8::5'] },
    };
    const r = await resolve('sip:bob@pbx.example.com:5070', zone);
    expect(r.lines).toEqual(['UDP 192.0.2.5:5070', 'UDP 192.0.2.6:5070', 'UDP [2001:db8::5]:5070']);
    expect([...r.log].sort()).toEqual(['A pbx.example.com', 'AAAA pbx.example.com']);
    expect(r.targets[0].serverName).toBe('pbx.example.com');
  });

  it('§4.2 sips URI with a port: TLS; transport=tcp with a port: TCP', async () => {
    const zone: Zone = { a: { 'pbx.example.com': ['192.0.2.5'] } };
    expect((await resolve('sips:pbx.example.com:5071', zone)).lines).toEqual([
      'TLS 192.0.2.5:5071',
    ]);
    expect((await resolve('sip:pbx.example.com:5071;transport=tcp', zone)).lines).toEqual([
      'TCP 192.0.2.5:5071',
    ]);
  });

  it('§4.2 preferIPv6 puts a host’s AAAA addresses first', async () => {
    const zone: Zone = {
      a: { 'pbx.example.com': ['192.0.2.5'] },
      aaaa: { 'pbx.example.com': ['2001:db8::5'] },
    };
    const r = await resolve('sip:pbx.example.com:5070', zone, { preferIPv6: true });
    expect(r.lines).toEqual(['UDP [2001:db8::5]:5070', 'UDP 192.0.2.5:5070']);
    expect(r.targets.map((t) => t.family)).toEqual(['IPv6', 'IPv4']);
  });

  it('§4.2 a host with no addresses is a ResolveError', async () => {
    const { err } = await resolveError('sip:nowhere.example.com:5060', {});
    expect(err).toBeInstanceOf(ResolveError);
  });
});

describe('RFC 3263 §4.2 transport parameter without port: SRV for that transport', () => {
  it('§4.2 transport=tcp queries _sip._tcp only, no NAPTR', async () => {
    const r = await resolve('sip:example.com;transport=tcp', example);
    expect(r.lines).toEqual(['TCP 192.0.2.1:5062', 'TCP [2001:db8::1]:5062', 'TCP 192.0.2.2:5060']);
    expect(r.log[0]).toBe('SRV _sip._tcp.example.com');
    expect(r.log.some((q) => q.startsWith('NAPTR'))).toBe(false);
  });

  it('§4.2 sips;transport=tcp and sip;transport=tls query _sips._tcp', async () => {
    for (const uri of ['sips:example.com;transport=tcp', 'sip:example.com;transport=tls']) {
      const r = await resolve(uri, example);
      expect(r.lines, uri).toEqual(['TLS 192.0.2.1:5061', 'TLS [2001:db8::1]:5061']);
      expect(r.log[0], uri).toBe('SRV _sips._tcp.example.com');
    }
  });

  it('§4.2 transport=sctp queries _sip._sctp', async () => {
    const r = await resolve('sip:example.com;transport=sctp', example, {
      available: ['UDP', 'SCTP'],
    });
    expect(r.lines).toEqual(['SCTP 192.0.2.1:5060', 'SCTP [2001:db8::1]:5060']);
    expect(r.log[0]).toBe('SRV _sip._sctp.example.com');
  });

  it('§4.2 no SRV for the transport: A/AAAA of the domain at the default port', async () => {
    const r = await resolve('sip:example.com;transport=udp', {
      a: { 'example.com': ['192.0.2.9'] },
    });
    expect(r.lines).toEqual(['UDP 192.0.2.9:5060']);
    expect(r.log).toEqual(['SRV _sip._udp.example.com', 'A example.com', 'AAAA example.com']);
  });

  it('RFC 7118 transport=ws uses _sip._ws when it exists', async () => {
    const zone: Zone = {
      srv: { '_sip._ws.example.com': [srv(10, 0, 8080, 'ws.example.com')] },
      a: { 'ws.example.com': ['192.0.2.80'], 'example.com': ['192.0.2.9'] },
    };
    const r = await resolve('sip:example.com;transport=ws', zone, { available: ['WS'] });
    expect(r.lines).toEqual(['WS 192.0.2.80:8080']);
  });

  it('RFC 7118 transport=ws/wss without SRV: A/AAAA on port 80/443; sips;transport=ws is WSS', async () => {
    const zone: Zone = { a: { 'example.com': ['192.0.2.9'] } };
    const available = ['WS', 'WSS'];
    const ws = await resolve('sip:example.com;transport=ws', zone, { available });
    expect(ws.lines).toEqual(['WS 192.0.2.9:80']);
    const wss = await resolve('sip:example.com;transport=wss', zone, { available });
    expect(wss.lines).toEqual(['WSS 192.0.2.9:443']);
    expect(wss.log[0]).toBe('SRV _sips._ws.example.com');
    const sips = await resolve('sips:example.com;transport=ws', zone, { available });
    expect(sips.lines).toEqual(['WSS 192.0.2.9:443']);
  });
});

describe('RFC 3263 §4.1 NAPTR', () => {
  it('§4.1 sorts by order then preference and follows every replacement with SRV', async () => {
    const r = await resolve('sip:alice@example.com', example);
    expect(r.lines).toEqual([
      // order 10 pref 10: SIP+D2T, SRV priority 10 then 20
      'TCP 192.0.2.1:5062',
      'TCP [2001:db8::1]:5062',
      'TCP 192.0.2.2:5060',
      // order 10 pref 20: SIP+D2U
      'UDP 192.0.2.1:5060',
      'UDP [2001:db8::1]:5060',
      // order 20: SIPS+D2T, usable for a sip URI too
      'TLS 192.0.2.1:5061',
      'TLS [2001:db8::1]:5061',
    ]);
    expect(r.targets.every((t) => t.serverName === 'example.com')).toBe(true);
    // One A/AAAA pair per host, however many SRV records name it.
    expect(r.log.filter((q) => q === 'A a.example.com')).toHaveLength(1);
  });

  it('§4.1 keeps only transports the stack has', async () => {
    const r = await resolve('sip:example.com', example, { available: ['UDP'] });
    expect(r.lines).toEqual(['UDP 192.0.2.1:5060', 'UDP [2001:db8::1]:5060']);
    expect(r.log.filter((q) => q.startsWith('SRV'))).toEqual(['SRV _sip._udp.example.com']);
  });

  it('§4.1 a sips URI keeps only SIPS services', async () => {
    const r = await resolve('sips:example.com', example);
    expect(r.lines).toEqual(['TLS 192.0.2.1:5061', 'TLS [2001:db8::1]:5061']);
    expect(r.log.filter((q) => q.startsWith('SRV'))).toEqual(['SRV _sips._tcp.example.com']);
  });

  it('§4.1 discards non-terminal flags, other services, "." replacements and unavailable transports', async () => {
    const zone: Zone = {
      naptr: {
        'example.com': [
          naptr(1, 1, 'E2U+sip', '_sip._udp.example.com'),
          naptr(1, 2, 'SIP+D2U', 'next.example.com', ''),
          naptr(1, 3, 'SIP+D2U', '.'),
          naptr(1, 4, 'SIP+D2S', '_sip._sctp.example.com'),
          naptr(1, 5, 'sip+d2t', '_sip._tcp.example.com', 'S'),
        ],
      },
      srv: example.srv,
      a: example.a,
      aaaa: example.aaaa,
    };
    const r = await resolve('sip:example.com', zone);
    expect(r.lines).toEqual(['TCP 192.0.2.1:5062', 'TCP [2001:db8::1]:5062', 'TCP 192.0.2.2:5060']);
    expect(r.log.filter((q) => q.startsWith('SRV'))).toEqual(['SRV _sip._tcp.example.com']);
  });

  it('RFC 7118 SIP+D2W / SIPS+D2W are followed when WS/WSS are available', async () => {
    const zone: Zone = {
      naptr: {
        'example.com': [
          naptr(10, 10, 'SIPS+D2W', '_sips._ws.example.com'),
          naptr(10, 20, 'SIP+D2W', '_sip._ws.example.com'),
          naptr(10, 30, 'SIP+D2U', '_sip._udp.example.com'),
        ],
      },
      srv: {
        '_sips._ws.example.com': [srv(10, 0, 443, 'ws.example.com')],
        '_sip._ws.example.com': [srv(10, 0, 80, 'ws.example.com')],
        '_sip._udp.example.com': [srv(10, 0, 5060, 'a.example.com')],
      },
      a: { 'ws.example.com': ['192.0.2.80'], 'a.example.com': ['192.0.2.1'] },
    };
    expect((await resolve('sip:example.com', zone, { available: ['WS', 'WSS'] })).lines).toEqual([
      'WSS 192.0.2.80:443',
      'WS 192.0.2.80:80',
    ]);
    expect((await resolve('sip:example.com', zone)).lines).toEqual(['UDP 192.0.2.1:5060']);
  });

  it('§4.2 NAPTR without SRV behind it: A/AAAA with the most preferred NAPTR transport', async () => {
    const zone: Zone = {
      naptr: {
        'example.com': [
          naptr(10, 20, 'SIP+D2U', '_sip._udp.example.com'),
          naptr(10, 10, 'SIP+D2T', '_sip._tcp.example.com'),
        ],
      },
      a: { 'example.com': ['192.0.2.9'] },
    };
    const r = await resolve('sip:example.com', zone);
    expect(r.lines).toEqual(['TCP 192.0.2.9:5060']);
  });

  it('§4.1 NAPTR records that are all unusable count as no NAPTR', async () => {
    const zone: Zone = {
      naptr: { 'example.com': [naptr(10, 10, 'SIP+D2S', '_sip._sctp.example.com')] },
      srv: { '_sip._tcp.example.com': [srv(10, 0, 5060, 'a.example.com')] },
      a: { 'a.example.com': ['192.0.2.1'] },
    };
    const r = await resolve('sip:example.com', zone);
    expect(r.lines).toEqual(['TCP 192.0.2.1:5060']);
  });
});

describe('RFC 3263 §4.1 no NAPTR: SRV per transport, then A/AAAA', () => {
  it('§4.1 queries _sip._udp, _sip._tcp, _sips._tcp and uses those that exist, in that order', async () => {
    const zone: Zone = {
      srv: {
        '_sip._tcp.example.com': [srv(10, 0, 5060, 'a.example.com')],
        '_sips._tcp.example.com': [srv(10, 0, 5061, 'a.example.com')],
      },
      a: { 'a.example.com': ['192.0.2.1'] },
    };
    const r = await resolve('sip:example.com', zone);
    expect(r.lines).toEqual(['TCP 192.0.2.1:5060', 'TLS 192.0.2.1:5061']);
    expect(r.log.slice(0, 4)).toEqual([
      'NAPTR example.com',
      'SRV _sip._udp.example.com',
      'SRV _sip._tcp.example.com',
      'SRV _sips._tcp.example.com',
    ]);
  });

  it('§4.1 UDP first when its SRV exists; SCTP is queried last, only when available', async () => {
    const r = await resolve(
      'sip:example.com',
      { ...example, naptr: {} },
      {
        available: ['UDP', 'TCP', 'TLS', 'SCTP'],
      },
    );
    expect(r.lines).toEqual([
      'UDP 192.0.2.1:5060',
      'UDP [2001:db8::1]:5060',
      'TCP 192.0.2.1:5062',
      'TCP [2001:db8::1]:5062',
      'TCP 192.0.2.2:5060',
      'TLS 192.0.2.1:5061',
      'TLS [2001:db8::1]:5061',
      'SCTP 192.0.2.1:5060',
      'SCTP [2001:db8::1]:5060',
    ]);
  });

  it('§4.1 a sips URI queries _sips._tcp only', async () => {
    const r = await resolve('sips:example.com', { ...example, naptr: {} });
    expect(r.lines).toEqual(['TLS 192.0.2.1:5061', 'TLS [2001:db8::1]:5061']);
    expect(r.log.filter((q) => q.startsWith('SRV'))).toEqual(['SRV _sips._tcp.example.com']);
  });

  it('§4.2 no NAPTR and no SRV: A/AAAA with UDP 5060 (sip) or TLS 5061 (sips)', async () => {
    const zone: Zone = {
      a: { 'example.com': ['192.0.2.9'] },
      aaaa: { 'example.com': ['2001:db8::9'] },
    };
    expect((await resolve('sip:example.com', zone)).lines).toEqual([
      'UDP 192.0.2.9:5060',
      'UDP [2001:db8::9]:5060',
    ]);
    expect((await resolve('sips:example.com', zone)).lines).toEqual([
      'TLS 192.0.2.9:5061',
      'TLS [2001:db8::9]:5061',
    ]);
  });

  it('§4.1 a stack without UDP falls back to TCP for a sip URI', async () => {
    const zone: Zone = { a: { 'example.com': ['192.0.2.9'] } };
    expect((await resolve('sip:example.com', zone, { available: ['TCP', 'TLS'] })).lines).toEqual([
      'TCP 192.0.2.9:5060',
    ]);
    expect((await resolve('sip:192.0.2.9', {}, { available: ['TCP'] })).lines).toEqual([
      'TCP 192.0.2.9:5060',
    ]);
  });
});

describe('RFC 2782 SRV ordering (RFC 3263 §4.3)', () => {
  const weighted: Zone = {
    srv: {
      '_sip._udp.example.com': [
        srv(20, 0, 5060, 'backup.example.com'),
        srv(10, 20, 5060, 'light.example.com'),
        srv(10, 80, 5060, 'heavy.example.com'),
      ],
    },
    a: {
      'backup.example.com': ['192.0.2.3'],
      'light.example.com': ['192.0.2.2'],
      'heavy.example.com': ['192.0.2.1'],
    },
  };

  it('priority ascending; within a priority the running-sum draw picks', async () => {
    // Records of priority 10 in list order: heavy (80, running sum 80), light (20, sum 100).
    // random 0.9 draws floor(0.9 * 101) = 90 > 80: light first.
    const light = await resolve('sip:example.com;transport=udp', weighted, {
      random: sequence(0.9),
    });
    expect(light.lines).toEqual(['UDP 192.0.2.2:5060', 'UDP 192.0.2.1:5060', 'UDP 192.0.2.3:5060']);
    // random 0.5 draws 50 <= 80: heavy first.
    const heavy = await resolve('sip:example.com;transport=udp', weighted, {
      random: sequence(0.5),
    });
    expect(heavy.lines).toEqual(['UDP 192.0.2.1:5060', 'UDP 192.0.2.2:5060', 'UDP 192.0.2.3:5060']);
  });

  it('the order does not depend on the order DNS returned the records in', async () => {
    const reversed: Zone = {
      ...weighted,
      srv: {
        '_sip._udp.example.com': [...(weighted.srv?.['_sip._udp.example.com'] ?? [])].reverse(),
      },
    };
    for (const r of [0, 0.5, 0.9]) {
      const a = await resolve('sip:example.com;transport=udp', weighted, { random: sequence(r) });
      const b = await resolve('sip:example.com;transport=udp', reversed, { random: sequence(r) });
      expect(b.lines).toEqual(a.lines);
    }
  });

  it('weight 0 records go first in the list and are picked only on a draw of 0', async () => {
    const zone: Zone = {
      srv: {
        '_sip._udp.example.com': [
          srv(10, 10, 5060, 'ten.example.com'),
          srv(10, 0, 5060, 'zero.example.com'),
        ],
      },
      a: { 'ten.example.com': ['192.0.2.10'], 'zero.example.com': ['192.0.2.20'] },
    };
    const uri = 'sip:example.com;transport=udp';
    expect((await resolve(uri, zone, { random: sequence(0) })).lines[0]).toBe(
      'UDP 192.0.2.20:5060',
    );
    expect((await resolve(uri, zone, { random: sequence(0.1) })).lines[0]).toBe(
      'UDP 192.0.2.10:5060',
    );
  });

  it('weighted selection: over many seeded draws the heavier record comes first more often', async () => {
    const random = seeded(3263);
    const dns = new FakeDns(weighted);
    const uri = parseUri('sip:example.com;transport=udp');
    const runs = 2000;
    let heavyFirst = 0;
    for (let i = 0; i < runs; i++) {
      const targets = await resolveTargets(uri, { resolver: dns, available: ALL, random });
      if (targets[0].address === '192.0.2.1') heavyFirst++;
      // Priority 20 always comes last.
      expect(targets[2].address).toBe('192.0.2.3');
    }
    // Draws 0..80 of 0..100 pick heavy: 81/101 ≈ 0.80.
    expect(heavyFirst / runs).toBeGreaterThan(0.74);
    expect(heavyFirst / runs).toBeLessThan(0.86);
  });

  it('an SRV target of "." means the service is not available: no A/AAAA guess', async () => {
    const zone: Zone = {
      srv: { '_sip._tcp.example.com': [srv(0, 0, 0, '.')] },
      a: { 'example.com': ['192.0.2.9'] },
    };
    const { err, log } = await resolveError('sip:example.com;transport=tcp', zone);
    expect(err).toBeInstanceOf(ResolveError);
    expect(log).toEqual(['SRV _sip._tcp.example.com']);
  });

  it('"." for UDP in the no-NAPTR fallback removes UDP only', async () => {
    const zone: Zone = {
      srv: {
        '_sip._udp.example.com': [srv(0, 0, 0, '')],
        '_sip._tcp.example.com': [srv(10, 0, 5060, 'a.example.com')],
      },
      a: { 'a.example.com': ['192.0.2.1'], 'example.com': ['192.0.2.9'] },
    };
    expect((await resolve('sip:example.com', zone)).lines).toEqual(['TCP 192.0.2.1:5060']);
    const onlyUdp = await resolveError('sip:example.com', zone, ['UDP']);
    expect(onlyUdp.err).toBeInstanceOf(ResolveError);
    expect(onlyUdp.log).not.toContain('A example.com');
  });

  it('an SRV record with port 0 and a real target is skipped, not taken as "."', async () => {
    const zone: Zone = {
      srv: {
        '_sip._udp.example.com': [
          srv(10, 0, 0, 'a.example.com'),
          srv(20, 0, 5070, 'b.example.com'),
        ],
      },
      a: { 'a.example.com': ['192.0.2.1'], 'b.example.com': ['192.0.2.2'] },
    };
    const r = await resolve('sip:example.com;transport=udp', zone);
    expect(r.lines).toEqual(['UDP 192.0.2.2:5070']);
  });

  it('each SRV target expands to A then AAAA; one failed host does not fail the rest', async () => {
    const zone: Zone = {
      srv: {
        '_sip._udp.example.com': [
          srv(10, 0, 5060, 'broken.example.com'),
          srv(20, 0, 5060, 'dual.example.com'),
          srv(30, 0, 5060, 'missing.example.com'),
        ],
      },
      a: { 'dual.example.com': ['192.0.2.1', '192.0.2.2'] },
      aaaa: { 'dual.example.com': ['2001:db8::1'] },
      fail: { 'A broken.example.com': 'ETIMEOUT', 'AAAA broken.example.com': 'ESERVFAIL' },
    };
    const r = await resolve('sip:example.com;transport=udp', zone);
    expect(r.lines).toEqual(['UDP 192.0.2.1:5060', 'UDP 192.0.2.2:5060', 'UDP [2001:db8::1]:5060']);
  });
});

describe('RFC 3263 §4.3 failover list', () => {
  it('removes duplicates, keeping the first place', async () => {
    const zone: Zone = {
      naptr: {
        'example.com': [
          naptr(10, 10, 'SIP+D2U', '_sip._udp.example.com'),
          naptr(10, 20, 'SIP+D2U', '_sip._udp.example.com'),
        ],
      },
      srv: {
        '_sip._udp.example.com': [
          srv(10, 0, 5060, 'a.example.com'),
          srv(20, 0, 5060, 'alias.example.com'),
        ],
      },
      a: { 'a.example.com': ['192.0.2.1'], 'alias.example.com': ['192.0.2.1', '192.0.2.2'] },
    };
    const r = await resolve('sip:example.com', zone);
    expect(r.lines).toEqual(['UDP 192.0.2.1:5060', 'UDP 192.0.2.2:5060']);
  });

  it('the same address on another protocol or port is a different target', async () => {
    const r = await resolve('sip:example.com', example);
    expect(new Set(r.lines).size).toBe(r.lines.length);
    expect(r.lines.filter((l) => l.includes('192.0.2.1:'))).toEqual([
      'TCP 192.0.2.1:5062',
      'UDP 192.0.2.1:5060',
      'TLS 192.0.2.1:5061',
    ]);
  });
});

describe('DNS failures and ResolveError', () => {
  it('a NAPTR timeout counts as no NAPTR: the SRV fallback still runs', async () => {
    const zone: Zone = { ...example, fail: { 'NAPTR example.com': 'ETIMEOUT' } };
    const r = await resolve('sip:example.com', zone);
    expect(r.lines[0]).toBe('UDP 192.0.2.1:5060');
  });

  it('a failed SRV query counts as no records for that transport only', async () => {
    const zone: Zone = {
      ...example,
      naptr: {},
      fail: { 'SRV _sip._udp.example.com': 'ESERVFAIL' },
    };
    const r = await resolve('sip:example.com', zone);
    expect(r.lines[0]).toBe('TCP 192.0.2.1:5062');
    expect(r.lines.some((l) => l.startsWith('UDP'))).toBe(false);
  });

  it('nothing resolves: ResolveError with code SIP_ERR_RESOLVE naming the failed queries', async () => {
    const zone: Zone = {
      fail: {
        'NAPTR example.com': 'ETIMEOUT',
        'SRV _sip._udp.example.com': 'ESERVFAIL',
        'A example.com': 'ETIMEOUT',
      },
    };
    const { err } = await resolveError('sip:alice@example.com', zone);
    expect(err).toBeInstanceOf(ResolveError);
    const e = err as ResolveError;
    expect(e.code).toBe('SIP_ERR_RESOLVE');
    expect(e.name).toBe('ResolveError');
    expect(e.target).toBe('example.com');
    expect(e.message).toContain('sip:alice@example.com');
    expect(e.message).toContain('NAPTR example.com: ETIMEOUT');
    expect(e.message).toContain('SRV _sip._udp.example.com: ESERVFAIL');
    expect(e.message).toContain('SRV _sip._tcp.example.com: no records');
    expect(e.message).toContain('A example.com: ETIMEOUT');
    expect(e.failures.map((f) => `${f.type} ${f.name} ${f.code}`)).toEqual([
      'NAPTR example.com ETIMEOUT',
      'SRV _sip._udp.example.com ESERVFAIL',
      'A example.com ETIMEOUT',
    ]);
    expect(e.queries).toHaveLength(6);
  });

  it('an unknown domain: ResolveError with no failures, only empty answers', async () => {
    const { err } = await resolveError('sips:nowhere.example', {});
    expect(err).toBeInstanceOf(ResolveError);
    const e = err as ResolveError;
    expect(e.failures).toEqual([]);
    expect(e.message).toContain('NAPTR nowhere.example: no records');
    expect(e.message).toContain('AAAA nowhere.example: no records');
  });

  it('an error without a code is recorded as EUNKNOWN', async () => {
    const dns: DnsResolver = {
      resolveNaptr: () => Promise.reject(new Error('boom')),
      resolveSrv: () => Promise.resolve([]),
      resolve4: () => Promise.resolve([]),
      resolve6: () => Promise.resolve([]),
    };
    const err = await resolveTargets(parseUri('sip:example.com'), {
      resolver: dns,
      available: ALL,
    }).catch((e: unknown) => e);
    expect((err as ResolveError).failures[0]).toEqual({
      type: 'NAPTR',
      name: 'example.com',
      code: 'EUNKNOWN',
      message: 'boom',
    });
  });
});

describe('transport availability and misuse', () => {
  it('RFC 3261 §26.2.2 a sips URI with transport=udp is SIP_ERR_NO_TRANSPORT', async () => {
    const { err, log } = await resolveError('sips:example.com;transport=udp', example);
    expect(err).toMatchObject({ code: 'SIP_ERR_NO_TRANSPORT' });
    expect(log).toEqual([]);
  });

  it('an unknown transport parameter is SIP_ERR_NO_TRANSPORT', async () => {
    const { err } = await resolveError('sip:192.0.2.1;transport=carrier-pigeon', {});
    expect(err).toMatchObject({ code: 'SIP_ERR_NO_TRANSPORT' });
  });

  it('§4.1 a transport the URI demands but the stack lacks is SIP_ERR_NO_TRANSPORT', async () => {
    expect((await resolveError('sip:192.0.2.1;transport=ws', {})).err).toMatchObject({
      code: 'SIP_ERR_NO_TRANSPORT',
    });
    expect((await resolveError('sips:192.0.2.1', {}, ['UDP', 'TCP'])).err).toMatchObject({
      code: 'SIP_ERR_NO_TRANSPORT',
    });
  });

  it('available transports are matched case-insensitively', async () => {
    expect(
      (await resolve('sip:192.0.2.1;transport=tcp', {}, { available: ['tcp'] })).lines,
    ).toEqual(['TCP 192.0.2.1:5060']);
  });

  it('a tel URI cannot be located: ResolveError', async () => {
    const { err } = await resolveError('tel:+15551234567', {});
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as ResolveError).initiator).toBe('user');
  });
});

describe('nodeDnsResolver', () => {
  it('builds a DnsResolver on node:dns/promises without querying', () => {
    const dns = nodeDnsResolver({ servers: ['127.0.0.1:1'], timeoutMs: 100, tries: 1 });
    expect(typeof dns.resolveNaptr).toBe('function');
    expect(typeof dns.resolveSrv).toBe('function');
    expect(typeof dns.resolve4).toBe('function');
    expect(typeof dns.resolve6).toBe('function');
  });

  it('throws a ResolveError naming the cause where node:dns is not reachable (browsers)', () => {
    const proc = process as { getBuiltinModule?: unknown };
    const original = proc.getBuiltinModule;
    proc.getBuiltinModule = undefined;
    try {
      expect(() => nodeDnsResolver()).toThrow(ResolveError);
      expect(() => nodeDnsResolver()).toThrow(/node:dns\/promises.*own\s+DnsResolver/s);
    } finally {
      proc.getBuiltinModule = original;
    }
  });
});
