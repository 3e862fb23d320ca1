/**
 * Transport selection: RFC 3263 §4 ("Locating SIP Servers", client usage).
 *
 * `resolveTargets(uri, options)` turns a sip or sips URI into the ordered list of
 * (protocol, address, port) targets a client tries in turn: on a transport error, a
 * timeout or a 503 the stack moves to the next one (RFC 3263 §4.3). DNS goes through a
 * `DnsResolver`, so the procedure itself is pure and runs on any JavaScript host;
 * `nodeDnsResolver()` is the implementation on Node's `node:dns/promises`.
 *
 * The procedure, with TARGET the `maddr` parameter if present, else the host:
 *
 * | TARGET | port | transport param | DNS queries |
 * | --- | --- | --- | --- |
 * | IPv4 / IPv6 literal | any | any | none (§4.1, §4.2) |
 * | domain name | present | any | A and AAAA (§4.2) |
 * | domain name | absent | present | SRV for that transport, else A and AAAA (§4.2) |
 * | domain name | absent | absent | NAPTR, then SRV per record (§4.1); without NAPTR, SRV per transport; then A and AAAA (§4.2) |
 *
 * Without a `transport` parameter a sip URI goes over UDP (TCP when the stack has no UDP)
 * and a sips URI over TLS (§4.1). WebSocket (RFC 7118) is used only when the `transport`
 * parameter asks for it or a NAPTR record offers it.
 *
 * DNS answers NXDOMAIN (`ENOTFOUND`) and NODATA (`ENODATA`) mean "no records". Any other
 * failure (timeout, SERVFAIL, refused) also counts as "no records" for that one query,
 * so one broken lookup does not hide the others; it is recorded, and if nothing at all
 * resolves the `ResolveError` lists every query and what became of it.
 */

import type { Uri } from '@sipworks/message';
import { loadDns } from '#platform';
import { type Initiator, SipStackError } from './errors.ts';
import type { DnsModule } from './platform/types.ts';

/** A NAPTR record (RFC 3403 §4.1), as `node:dns` returns it. */
export interface NaptrRecord {
  order: number;
  preference: number;
  flags: string;
  service: string;
  regexp: string;
  replacement: string;
}

/** An SRV record (RFC 2782), as `node:dns` returns it. */
export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  name: string;
}

/**
 * The DNS queries RFC 3263 needs. Each method resolves to the records found, and rejects
 * with an error whose `code` is `ENOTFOUND` or `ENODATA` when there are none (the
 * `node:dns` convention; an empty array means the same).
 */
export interface DnsResolver {
  resolveNaptr(name: string): Promise<NaptrRecord[]>;
  resolveSrv(name: string): Promise<SrvRecord[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** One place to send a request to. */
export interface ResolvedTarget {
  /** `UDP`, `TCP`, `TLS`, `SCTP`, `TLS-SCTP` (sips over SCTP), `WS` or `WSS`. */
  protocol: string;
  /** The IP address, IPv6 without brackets. */
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
  /**
   * The name a TLS peer's certificate is checked against: the host of the URI, never an
   * SRV or NAPTR target (RFC 5922: the identity checked is the SIP domain that was resolved).
   */
  serverName: string;
}

export interface ResolveOptions {
  resolver: DnsResolver;
  /** Transports the stack has, e.g. `['UDP', 'TCP', 'TLS']` (case-insensitive). */
  available: readonly string[];
  /** Random number in [0, 1) for SRV weight selection (RFC 2782); default `Math.random`. */
  random?: () => number;
  /** Put a host's IPv6 addresses before its IPv4 ones (default false: IPv4 then IPv6). */
  preferIPv6?: boolean;
}

export type DnsQueryType = 'NAPTR' | 'SRV' | 'A' | 'AAAA';

/** A DNS query made while resolving, and what came of it. */
export interface DnsQuery {
  type: DnsQueryType;
  name: string;
  /** Number of records returned (0 for NXDOMAIN, NODATA or a failure). */
  records: number;
  /** The error code when the query failed for another reason than "no such records". */
  error?: string;
}

/** A DNS query that failed for another reason than "no such records". */
export interface DnsFailure {
  type: DnsQueryType;
  name: string;
  /** `ETIMEOUT`, `ESERVFAIL`, `EREFUSED`, ... (`EUNKNOWN` when the error had no code). */
  code: string;
  message: string;
}

/** No target could be found for a URI (code `SIP_ERR_RESOLVE`). */
export class ResolveError extends SipStackError {
  override name = 'ResolveError';
  /** The host (or maddr) that was being resolved; empty when there was none. */
  readonly target: string;
  /** Every DNS query made, in the order they were issued. */
  readonly queries: readonly DnsQuery[];
  /** The queries that failed for another reason than "no such records". */
  readonly failures: readonly DnsFailure[];
  constructor(
    message: string,
    details: {
      target?: string;
      queries?: readonly DnsQuery[];
      failures?: readonly DnsFailure[];
      initiator?: Initiator;
      cause?: unknown;
    } = {},
  ) {
    super(
      'SIP_ERR_RESOLVE',
      message,
      details.initiator ?? 'local',
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.target = details.target ?? '';
    this.queries = details.queries ?? [];
    this.failures = details.failures ?? [];
  }
}

interface ProtocolInfo {
  /** RFC 3261 §19.1.2 (5060, 5061), RFC 7118 (80, 443 from RFC 6455). */
  defaultPort: number;
  /** The SRV service and protocol labels (RFC 3263 §4.2, RFC 7118). */
  srv: string;
}

const PROTOCOLS: Readonly<Record<string, ProtocolInfo>> = {
  UDP: { defaultPort: 5060, srv: '_sip._udp' },
  TCP: { defaultPort: 5060, srv: '_sip._tcp' },
  TLS: { defaultPort: 5061, srv: '_sips._tcp' },
  SCTP: { defaultPort: 5060, srv: '_sip._sctp' },
  'TLS-SCTP': { defaultPort: 5061, srv: '_sips._sctp' },
  WS: { defaultPort: 80, srv: '_sip._ws' },
  WSS: { defaultPort: 443, srv: '_sips._ws' },
};

/** NAPTR service field to protocol (RFC 3263 §4.1 and its IANA registry; D2W from RFC 7118). */
const NAPTR_SERVICES: Readonly<Record<string, string>> = {
  'SIP+D2U': 'UDP',
  'SIP+D2T': 'TCP',
  'SIPS+D2T': 'TLS',
  'SIP+D2S': 'SCTP',
  'SIPS+D2S': 'TLS-SCTP',
  'SIP+D2W': 'WS',
  'SIPS+D2W': 'WSS',
};

/** Protocols whose SRV records are queried when a domain has no usable NAPTR (RFC 3263 §4.1). */
const SRV_FALLBACK_SIP: readonly string[] = ['UDP', 'TCP', 'TLS', 'SCTP'];
const SRV_FALLBACK_SIPS: readonly string[] = ['TLS', 'TLS-SCTP'];

/**
 * Resolve a sip or sips URI to its ordered failover list of targets (RFC 3263 §4).
 *
 * Rejects with `ResolveError` (`SIP_ERR_RESOLVE`) when nothing resolves or the URI is
 * not a sip/sips URI, and with a `SipStackError` coded `SIP_ERR_NO_TRANSPORT` when the
 * transport the URI demands is not among `options.available`.
 */
export async function resolveTargets(uri: Uri, options: ResolveOptions): Promise<ResolvedTarget[]> {
  if (!uri.isSip) {
    throw new ResolveError(
      `cannot locate a server for a ${uri.scheme}: URI; RFC 3263 covers sip and sips URIs`,
      { initiator: 'user' },
    );
  }
  const secure = uri.isSecure;
  const available = new Set(options.available.map((t) => t.toUpperCase()));

  // RFC 3263 §4: TARGET is the maddr parameter of the URI when present, otherwise the
  // host of its hostport.
  const maddr = uri.params.get('maddr');
  const target = typeof maddr === 'string' && maddr.length > 0 ? maddr : uri.host;
  const serverName = unbracket(uri.host).toLowerCase();

  // RFC 3263 §4.1: "If the URI specifies a transport protocol in the transport parameter,
  // that transport protocol SHOULD be used."
  const transportParam = uri.params.get('transport');
  const explicit =
    typeof transportParam === 'string'
      ? protocolForParam(transportParam, secure, available, uri)
      : undefined;

  const literal = ipLiteral(target);
  if (literal !== undefined) {
    // RFC 3263 §4.1: a numeric TARGET without a transport parameter means UDP for a sip
    // URI and TCP (that is, TLS) for a sips URI. §4.2: "If TARGET is a numeric IP address,
    // the client uses that address. If the URI also contains a port, it uses that port.
    // If no port is specified, it uses the default port for the particular transport."
    const protocol = explicit ?? defaultProtocol(secure, available, uri);
    return [
      {
        protocol,
        address: literal.address,
        port: uri.port ?? defaultPort(protocol),
        family: literal.family,
        serverName,
      },
    ];
  }

  const host = target.toLowerCase();
  const run = new Resolution(options, serverName);

  if (uri.port !== undefined) {
    // RFC 3263 §4.1: a domain name with an explicit port and no transport parameter uses
    // UDP (sip) or TCP/TLS (sips). §4.2: "If the TARGET was not a numeric IP address, but
    // a port is present in the URI, the client performs an A or AAAA record lookup of the
    // domain name." No NAPTR or SRV.
    const protocol = explicit ?? defaultProtocol(secure, available, uri);
    return run.finish(uri, host, await run.addresses(host, protocol, uri.port));
  }

  if (explicit !== undefined) {
    // RFC 3263 §4.2: with the transport given explicitly (no NAPTR processing), the client
    // queries SRV for that transport only, with the "_sips" service identifier for a sips
    // URI; TLS on a sip URI also queries _sips._tcp. WebSocket uses _sip._ws / _sips._ws
    // in the same way (RFC 7118).
    const found = await run.viaSrv([{ protocol: explicit, name: srvName(explicit, host) }]);
    if (found.srvFound || found.denied.has(explicit)) {
      return run.finish(uri, host, found.targets);
    }
    // RFC 3263 §4.2: "If no SRV records were found, the client performs an A or AAAA
    // record lookup of the domain name ... at the default port for that transport."
    return run.finish(uri, host, await run.addresses(host, explicit, defaultPort(explicit)));
  }

  // RFC 3263 §4.1: no transport, no port, a domain name: NAPTR first.
  const naptrs = await run.naptr(host);
  const usable = naptrs
    .map((record) => ({ record, protocol: naptrProtocol(record, secure, available) }))
    .filter((x): x is { record: NaptrRecord; protocol: string } => x.protocol !== undefined)
    // RFC 3403 §4.1 (and RFC 3263 §4.1): lower ORDER first, then lower PREFERENCE.
    // The sort is stable, so records that tie keep the order DNS gave them.
    .sort((a, b) => a.record.order - b.record.order || a.record.preference - b.record.preference);

  if (usable.length > 0) {
    // RFC 3263 §4.1: each kept record's replacement is the SRV name to query for its
    // transport. All of them are followed, so the result also lists the less preferred
    // transports as failover targets.
    const found = await run.viaSrv(
      usable.map((x) => ({ protocol: x.protocol, name: x.record.replacement.toLowerCase() })),
    );
    const first = usable[0].protocol;
    if (found.srvFound || found.denied.has(first)) return run.finish(uri, host, found.targets);
    // RFC 3263 §4.2: no SRV records: A/AAAA of the domain, with "the transport protocol
    // determined previously" (the most preferred NAPTR) at its default port.
    return run.finish(uri, host, await run.addresses(host, first, defaultPort(first)));
  }

  // RFC 3263 §4.1: "If no NAPTR records are found, the client constructs SRV queries for
  // those transport protocols it supports, and does a query for each ... A particular
  // transport is supported if the query is successful." A sips URI queries TLS only
  // ("_sips" service identifier); WebSocket is never guessed.
  const candidates = (secure ? SRV_FALLBACK_SIPS : SRV_FALLBACK_SIP)
    .filter((p) => available.has(p))
    .map((protocol) => ({ protocol, name: srvName(protocol, host) }));
  const found = await run.viaSrv(candidates);
  if (found.srvFound) return run.finish(uri, host, found.targets);

  // RFC 3263 §4.2: "If no SRV records were found, the client performs an A or AAAA record
  // lookup of the domain name", with the default transport of §4.1 and its default port.
  // A transport whose SRV target is "." is not offered (RFC 2782), so it is not guessed.
  const protocol = defaultProtocol(secure, available, uri);
  if (found.denied.has(protocol)) return run.finish(uri, host, []);
  return run.finish(uri, host, await run.addresses(host, protocol, defaultPort(protocol)));
}

/** Options of `nodeDnsResolver`. */
export interface NodeDnsResolverOptions {
  /** DNS servers, as `node:dns` `setServers` takes them (`'127.0.0.1:5353'`, `'[::1]:53'`). Default: the system's. */
  servers?: string[];
  /** Initial query timeout in milliseconds (c-ares doubles it on each retry). Default: Node's. */
  timeoutMs?: number;
  /** Attempts per server before giving up. Default: Node's (4). */
  tries?: number;
}

/**
 * A `DnsResolver` on Node's `node:dns/promises` `Resolver`, loaded on first use. Where
 * there is none (a browser build, whose `#platform` has no DNS, or Node.js before 20.16)
 * calling this function throws a `ResolveError`.
 */
export function nodeDnsResolver(options: NodeDnsResolverOptions = {}): DnsResolver {
  const dns = loadNodeDns();
  const settings: { timeout?: number; tries?: number } = {};
  if (options.timeoutMs !== undefined) settings.timeout = options.timeoutMs;
  if (options.tries !== undefined) settings.tries = options.tries;
  const resolver = new dns.Resolver(settings);
  if (options.servers !== undefined) resolver.setServers(options.servers);
  return {
    async resolveNaptr(name) {
      const records = await resolver.resolveNaptr(name);
      return records.map((r) => ({
        order: r.order,
        preference: r.preference,
        flags: r.flags,
        service: r.service,
        regexp: r.regexp,
        replacement: r.replacement,
      }));
    },
    async resolveSrv(name) {
      const records = await resolver.resolveSrv(name);
      return records.map((r) => ({
        priority: r.priority,
        weight: r.weight,
        port: r.port,
        name: r.name,
      }));
    },
    resolve4: (name) => resolver.resolve4(name),
    resolve6: (name) => resolver.resolve6(name),
  };
}

function loadNodeDns(): DnsModule {
  const dns = loadDns();
  if (dns === undefined) {
    throw new ResolveError(
      'nodeDnsResolver() needs node:dns/promises, which this host does not provide ' +
        '(Node.js before 20.16, or a browser build); on such hosts pass your own ' +
        'DnsResolver in ResolveOptions.resolver (or use an outbound proxy named by its address)',
      { initiator: 'user' },
    );
  }
  return dns;
}

interface SrvCandidate {
  protocol: string;
  name: string;
}

interface SrvOutcome {
  targets: ResolvedTarget[];
  /** At least one SRV query returned a usable record. */
  srvFound: boolean;
  /** Protocols whose SRV answer was only the target ".". */
  denied: Set<string>;
}

interface HostAddresses {
  v4: string[];
  v6: string[];
}

/** The state of one `resolveTargets` call: its query log and an address cache. */
class Resolution {
  private readonly resolver: DnsResolver;
  private readonly random: () => number;
  private readonly preferIPv6: boolean;
  private readonly serverName: string;
  private readonly queries: DnsQuery[] = [];
  private readonly failures: DnsFailure[] = [];
  private readonly hosts = new Map<string, Promise<HostAddresses>>();

  constructor(options: ResolveOptions, serverName: string) {
    this.resolver = options.resolver;
    this.random = options.random ?? Math.random;
    this.preferIPv6 = options.preferIPv6 ?? false;
    this.serverName = serverName;
  }

  naptr(name: string): Promise<NaptrRecord[]> {
    return this.query('NAPTR', name, () => this.resolver.resolveNaptr(name));
  }

  /**
   * Query SRV for each candidate (in parallel), order each answer (RFC 2782), then expand
   * every SRV target to its addresses. The result keeps the candidates' order.
   */
  async viaSrv(candidates: readonly SrvCandidate[]): Promise<SrvOutcome> {
    const answers = await Promise.all(
      candidates.map((c) => this.query('SRV', c.name, () => this.resolver.resolveSrv(c.name))),
    );
    const denied = new Set<string>();
    let srvFound = false;
    const picks: { protocol: string; record: SrvRecord }[] = [];
    // Weighted ordering draws random numbers; doing it here, after all answers are in and
    // in candidate order, keeps the draws independent of which DNS answer came first.
    for (const [i, records] of answers.entries()) {
      const protocol = candidates[i].protocol;
      // RFC 2782: 'A Target of "." means that the service is decidedly not available at
      // this domain.' Such records usually carry port 0.
      const named = records.filter((r) => !isRootName(r.name));
      if (records.length > 0 && named.length === 0) denied.add(protocol);
      const offered = named.filter((r) => Number.isInteger(r.port) && r.port > 0 && r.port < 65536);
      if (offered.length === 0) continue;
      srvFound = true;
      for (const record of orderSrv(offered, this.random)) picks.push({ protocol, record });
    }
    // RFC 3263 §4.2: each SRV target is looked up with A/AAAA, tried in the SRV order.
    const expanded = await Promise.all(
      picks.map((p) => this.addresses(p.record.name.toLowerCase(), p.protocol, p.record.port)),
    );
    return { targets: expanded.flat(), srvFound, denied };
  }

  /** A/AAAA of one host, as targets with the given protocol and port (RFC 3263 §4.2). */
  async addresses(host: string, protocol: string, port: number): Promise<ResolvedTarget[]> {
    const literal = ipLiteral(host);
    if (literal !== undefined) {
      return [
        {
          protocol,
          address: literal.address,
          port,
          family: literal.family,
          serverName: this.serverName,
        },
      ];
    }
    let pending = this.hosts.get(host);
    if (pending === undefined) {
      pending = Promise.all([
        this.query('A', host, () => this.resolver.resolve4(host)),
        this.query('AAAA', host, () => this.resolver.resolve6(host)),
      ]).then(([v4, v6]) => ({ v4, v6: v6.map((a) => a.toLowerCase()) }));
      this.hosts.set(host, pending);
    }
    const { v4, v6 } = await pending;
    const make =
      (family: 'IPv4' | 'IPv6') =>
      (address: string): ResolvedTarget => ({
        protocol,
        address,
        port,
        family,
        serverName: this.serverName,
      });
    const four = v4.map(make('IPv4'));
    const six = v6.map(make('IPv6'));
    return this.preferIPv6 ? [...six, ...four] : [...four, ...six];
  }

  /**
   * RFC 3263 §4.3: the list is the failover order; the same (protocol, address, port)
   * reached through two records is tried once, at its first place.
   */
  finish(uri: Uri, host: string, targets: readonly ResolvedTarget[]): ResolvedTarget[] {
    const seen = new Set<string>();
    const out: ResolvedTarget[] = [];
    for (const t of targets) {
      const key = `${t.protocol} ${t.address} ${t.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(t);
    }
    if (out.length > 0) return out;
    const log = this.queries
      .map(
        (q) =>
          `${q.type} ${q.name}: ${q.error ?? (q.records === 0 ? 'no records' : `${q.records} records`)}`,
      )
      .join('; ');
    throw new ResolveError(
      `no SIP server found for ${uri.toString()} at ${host}${log.length > 0 ? ` (${log})` : ''}`,
      { target: host, queries: this.queries, failures: this.failures },
    );
  }

  private async query<T>(type: DnsQueryType, name: string, run: () => Promise<T[]>): Promise<T[]> {
    const entry: DnsQuery = { type, name, records: 0 };
    this.queries.push(entry);
    try {
      const records = await run();
      entry.records = records.length;
      return records;
    } catch (err) {
      const code = errorCode(err);
      // NXDOMAIN and NODATA: the name or the record type does not exist.
      if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
      entry.error = code;
      this.failures.push({
        type,
        name,
        code,
        message: err instanceof Error ? err.message : String(err),
      });
      return [];
    }
  }
}

/**
 * RFC 2782 "Usage rules": lowest priority first; within one priority, repeatedly pick a
 * record with probability proportional to its weight, records of weight 0 having a small
 * chance (they are placed first and are picked when the draw is 0).
 */
function orderSrv(records: readonly SrvRecord[], random: () => number): SrvRecord[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const out: SrvRecord[] = [];
  for (const priority of priorities) {
    // RFC 2782: "arrange all SRV RRs (that have not been ordered yet) in any order, except
    // that all those with weight 0 are placed at the beginning of the list". Sorting the
    // rest by name and port makes the result depend on `random` only, not on DNS order.
    const pending = records
      .filter((r) => r.priority === priority)
      .sort(
        (a, b) =>
          Number(a.weight !== 0) - Number(b.weight !== 0) ||
          compareText(a.name.toLowerCase(), b.name.toLowerCase()) ||
          a.port - b.port,
      );
    while (pending.length > 1) {
      const total = pending.reduce((sum, r) => sum + Math.max(0, r.weight), 0);
      // "choose a uniform random number between 0 and the sum computed (inclusive), and
      // select the RR whose running sum value is the first in the selected order which is
      // greater than or equal to the random number selected."
      const draw = Math.floor(random() * (total + 1));
      let index = pending.length - 1;
      let running = 0;
      for (const [i, r] of pending.entries()) {
        running += Math.max(0, r.weight);
        if (running >= draw) {
          index = i;
          break;
        }
      }
      out.push(...pending.splice(index, 1));
    }
    out.push(...pending);
  }
  return out;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The protocol a `transport` parameter names, for a sip or sips URI (RFC 3261 §19.1.1,
 * §26.2.2: a sips URI is reached over TLS, so `transport=tcp` means TLS over TCP).
 */
function protocolForParam(
  param: string,
  secure: boolean,
  available: ReadonlySet<string>,
  uri: Uri,
): string {
  const value = param.toLowerCase();
  let protocol: string | undefined;
  switch (value) {
    case 'udp':
      protocol = secure ? undefined : 'UDP';
      break;
    case 'tcp':
      protocol = secure ? 'TLS' : 'TCP';
      break;
    case 'tls':
      protocol = 'TLS';
      break;
    case 'sctp':
      protocol = secure ? 'TLS-SCTP' : 'SCTP';
      break;
    case 'ws':
      protocol = secure ? 'WSS' : 'WS';
      break;
    case 'wss':
      protocol = 'WSS';
      break;
    default:
      protocol = undefined;
  }
  if (protocol === undefined) {
    throw new SipStackError(
      'SIP_ERR_NO_TRANSPORT',
      secure && value === 'udp'
        ? `${uri.toString()}: a sips URI cannot be reached over UDP (RFC 3261 §26.2.2)`
        : `${uri.toString()}: unknown transport '${param}'`,
      'user',
    );
  }
  return requireAvailable(protocol, available, uri);
}

/**
 * RFC 3263 §4.1: with no transport parameter, "the client SHOULD use UDP for a SIP URI,
 * and TCP for a SIPS URI" (TLS over TCP). Every SIP element implements both UDP and TCP
 * (RFC 3261 §18), so a stack without UDP uses TCP for a sip URI.
 */
function defaultProtocol(secure: boolean, available: ReadonlySet<string>, uri: Uri): string {
  if (secure) return requireAvailable('TLS', available, uri);
  if (!available.has('UDP') && available.has('TCP')) return 'TCP';
  return requireAvailable('UDP', available, uri);
}

function requireAvailable(protocol: string, available: ReadonlySet<string>, uri: Uri): string {
  if (available.has(protocol)) return protocol;
  throw new SipStackError(
    'SIP_ERR_NO_TRANSPORT',
    `${uri.toString()} needs ${protocol}, which is not among the available transports (${[...available].join(', ') || 'none'})`,
  );
}

/**
 * The protocol of a NAPTR record, or undefined when RFC 3263 §4.1 says to discard it:
 * its flags are not "s" (terminal, the replacement is an SRV name), its service is not a
 * SIP one the stack can use, or it is a SIP (non-SIPS) record while a sips URI is being
 * resolved ("a client resolving a SIPS URI MUST discard any services that do not contain
 * "SIPS" as the protocol in the service field").
 */
function naptrProtocol(
  record: NaptrRecord,
  secure: boolean,
  available: ReadonlySet<string>,
): string | undefined {
  if (record.flags.toLowerCase() !== 's') return undefined;
  if (isRootName(record.replacement)) return undefined;
  const service = record.service.toUpperCase();
  const protocol = NAPTR_SERVICES[service];
  if (protocol === undefined) return undefined;
  if (secure && !service.startsWith('SIPS+')) return undefined;
  return available.has(protocol) ? protocol : undefined;
}

function srvName(protocol: string, host: string): string {
  return `${PROTOCOLS[protocol].srv}.${host}`;
}

function defaultPort(protocol: string): number {
  return PROTOCOLS[protocol].defaultPort;
}

function isRootName(name: string): boolean {
  return name === '' || name === '.';
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A numeric host (RFC 3261 §25.1 IPv4address, or IPv6reference / a bare IPv6address). */
function ipLiteral(host: string): { address: string; family: 'IPv4' | 'IPv6' } | undefined {
  if (host.startsWith('[')) {
    const inner = unbracket(host);
    return inner !== host && isIPv6(inner)
      ? { address: inner.toLowerCase(), family: 'IPv6' }
      : undefined;
  }
  if (isIPv4(host)) return { address: host, family: 'IPv4' };
  if (isIPv6(host)) return { address: host.toLowerCase(), family: 'IPv6' };
  return undefined;
}

function isIPv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return false;
  return m.slice(1).every((octet) => Number(octet) <= 255);
}

/** RFC 4291 §2.2 text forms: eight groups, "::" for one or more zero groups, a trailing IPv4. */
function isIPv6(s: string): boolean {
  if (!s.includes(':') || !/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  let groups = 0;
  for (const [h, half] of halves.entries()) {
    if (half === '') continue;
    const parts = half.split(':');
    for (const [p, part] of parts.entries()) {
      const last = h === halves.length - 1 && p === parts.length - 1;
      if (last && part.includes('.')) {
        if (!isIPv4(part)) return false;
        groups += 2;
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) {
        groups += 1;
      } else {
        return false;
      }
    }
  }
  return halves.length === 2 ? groups <= 7 : groups === 8;
}

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return 'EUNKNOWN';
}
