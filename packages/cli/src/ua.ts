import { DialogUsageManager, MasterProfile } from '@sipworks/dum';
import { parseUri, type Uri } from '@sipworks/message';
import { SipStack, type Transport } from '@sipworks/stack';
import { CliError, UsageError } from './errors.ts';
import { describeTransport, type ListenSpec, makeTransport } from './listen.ts';
import type { CliOptions } from './options.ts';
import type { Output } from './output.ts';
import { Wire, type WireOptions } from './wire.ts';

/** A running stack with its transports, DUM and wire observer. */
export interface Ua {
  stack: SipStack;
  dum: DialogUsageManager;
  transports: Transport[];
  wire: Wire;
}

/** Parse a SIP URI from the command line, or say how to write one. */
export function sipUri(value: string, what: string): Uri {
  let uri: Uri;
  try {
    uri = parseUri(value.trim().replace(/^<(.*)>$/, '$1'));
  } catch (e) {
    throw new UsageError(
      `${what} '${value}' is not a SIP URI (${(e as Error).message}): write it as sip:user@host[:port]`,
    );
  }
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips')
    throw new UsageError(`${what} '${value}' must be a sip: or sips: URI`);
  return uri;
}

/** The URI with `;transport=` from `--transport` when it names none. */
export function withTransport(uri: Uri, transport: string | undefined): Uri {
  if (!transport || uri.params.has('transport')) return uri;
  const u = uri.clone();
  if (transport !== 'udp') u.params.set('transport', transport);
  return u;
}

/** The protocol a request to this URI goes over (stack names: UDP, TCP, TLS, WS, WSS). */
export function protocolOf(uri: Uri): string {
  const t = uri.params.get('transport')?.toLowerCase();
  if (t) return t;
  return uri.scheme === 'sips' ? 'tls' : 'udp';
}

/**
 * Start a stack on the `--listen` addresses (or `fallback`), plus a listener on the
 * loopback (or wildcard) for each protocol in `need` that has none, and a DUM on it.
 */
export async function startUa(
  o: CliOptions,
  out: Output,
  fallback: ListenSpec[],
  need: { protocol: string; host: string }[] = [],
  wireExtra: Partial<WireOptions> = {},
): Promise<Ua> {
  const specs = o.listen.length > 0 ? [...o.listen] : [...fallback];
  for (const n of need) {
    const p = n.protocol as ListenSpec['protocol'];
    if (!specs.some((s) => s.protocol === p)) {
      const host = n.host.startsWith('[') || n.host.includes(':') ? '::1' : loopbackOrAny(n.host);
      specs.push({ protocol: p, host, port: 0, clientOnly: true });
    }
  }
  const wire = new Wire({
    trace: o.trace,
    pcap: o.pcap,
    print: (l) => out.trace(l),
    colour: out.colour && !out.json,
    ...wireExtra,
  });
  const l = o.limits;
  const stack = new SipStack({
    ...(l.maxTransactions !== undefined ? { maxTransactions: l.maxTransactions } : {}),
    ...(l.maxPerSource !== undefined ? { maxTransactionsPerSource: l.maxPerSource } : {}),
    ...(l.retryAfter !== undefined ? { retryAfter: l.retryAfter } : {}),
  });
  const transports: Transport[] = [];
  try {
    for (const s of specs) {
      const t = makeTransport(
        s,
        { cert: o.cert, key: o.key, ca: o.ca, insecure: o.insecure },
        o.limits,
      );
      try {
        await stack.addTransport(t);
      } catch (e) {
        throw new CliError(
          `cannot listen on ${s.protocol}:${s.host}:${s.port}: ${(e as Error).message}; ` +
            'pick another port (0 picks a free one) or stop what uses it',
        );
      }
      transports.push(t);
    }
    await stack.start();
  } catch (e) {
    await stack.stop().catch(() => {});
    throw e;
  }
  wire.start();
  const master = new MasterProfile();
  const dum = new DialogUsageManager({ stack, masterProfile: master });
  // Bodies a subscriber may receive in NOTIFYs of the event packages the CLI knows.
  master.set('supportedMimeTypes', [
    ...master.get('supportedMimeTypes'),
    'application/simple-message-summary',
    'application/dialog-info+xml',
  ]);
  master.set('userAgent', 'sipworks-cli');
  applyCallSettings(master, o);
  return { stack, dum, transports, wire };
}

/**
 * `--prack`, `--session-expires` and `--min-se` on the master profile: the 100rel mode
 * (RFC 3262), and session timers on at that interval (RFC 4028). A `--session-expires`
 * below the Min-SE (90 s unless `--min-se` lowers it) is raised to it by the DUM.
 */
export function applyCallSettings(
  master: MasterProfile,
  o: Pick<CliOptions, 'prack' | 'sessionExpires' | 'minSE'>,
): void {
  if (o.prack !== undefined) master.set('prack', o.prack);
  if (o.minSE !== undefined) master.set('minSE', o.minSE);
  if (o.sessionExpires !== undefined)
    master.set('sessionTimers', true).set('sessionExpires', o.sessionExpires);
}

/** Loopback for a loopback target, else the wildcard address. */
function loopbackOrAny(host: string): string {
  return host === 'localhost' || host.startsWith('127.') ? '127.0.0.1' : '0.0.0.0';
}

export function listeningLines(transports: Transport[]): string[] {
  return transports.map((t) => describeTransport(t));
}
