import { readFileSync } from 'node:fs';
import type { Transport } from '@sipworks/stack';
import { TcpTransport } from '@sipworks/transport-tcp';
import { TlsTransport } from '@sipworks/transport-tls';
import { UdpTransport } from '@sipworks/transport-udp';
import { WsTransport } from '@sipworks/transport-ws';
import { CliError, UsageError } from './errors.ts';
import type { Limits } from './options.ts';

export type ListenProtocol = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** One `--listen` value: `udp|tcp|tls|ws|wss:HOST:PORT` (an IPv6 host in brackets). */
export interface ListenSpec {
  protocol: ListenProtocol;
  host: string;
  port: number;
  /**
   * Added by a client for the protocol of its target, not asked for with --listen: a TLS
   * or WSS transport without a certificate then only opens connections.
   */
  clientOnly?: boolean;
}

const PROTOCOLS = new Set<string>(['udp', 'tcp', 'tls', 'ws', 'wss']);

/** Parse `udp:127.0.0.1:5060`, `tcp:[::1]:0`, `ws:0.0.0.0:8080`. */
export function parseListen(value: string): ListenSpec {
  const m = /^([a-z]+):(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/i.exec(value.trim());
  const protocol = m?.[1]?.toLowerCase();
  if (!m || !protocol || !PROTOCOLS.has(protocol))
    throw new UsageError(
      `--listen ${value}: expected PROTOCOL:HOST:PORT with PROTOCOL one of udp, tcp, tls, ws, wss ` +
        '(for example --listen udp:127.0.0.1:5060, --listen tcp:[::1]:0)',
    );
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`--listen ${value}: the port must be 0-65535`);
  const host = (m[2] as string).replace(/^\[|\]$/g, '');
  return { protocol: protocol as ListenProtocol, host, port };
}

export interface TlsFiles {
  cert?: string | undefined;
  key?: string | undefined;
  /** Trust anchors (PEM) added to Node's CAs, for the server certificates we check. */
  ca?: string | undefined;
  /** Do not verify server certificates (connections this side opens). */
  insecure?: boolean | undefined;
}

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(
      `cannot read the ${what} ${file}: ${(e as Error).message}; give a readable PEM file`,
    );
  }
}

/**
 * The transport for a listen spec. TLS and WSS listeners need `--cert` and `--key`;
 * without them a TLS transport, or a WSS one a client added, only opens connections.
 */
export function makeTransport(spec: ListenSpec, tls: TlsFiles, limits: Limits = {}): Transport {
  const { host: address, port } = spec;
  const stream = streamLimits(limits);
  const cert = tls.cert ? read(tls.cert, 'certificate (--cert)') : undefined;
  const key = tls.key ? read(tls.key, 'key (--key)') : undefined;
  const ca = tls.ca ? read(tls.ca, 'CA certificates (--ca)') : undefined;
  switch (spec.protocol) {
    case 'udp':
      return new UdpTransport({ address, port });
    case 'tcp':
      return new TcpTransport({ address, port, ...stream });
    case 'tls':
      return new TlsTransport({
        address,
        port,
        ...stream,
        ...(cert && key ? { cert, key } : {}),
        ...(ca ? { ca } : {}),
        ...(tls.insecure ? { rejectUnauthorized: false } : {}),
      });
    case 'ws':
      return new WsTransport({ address, port, pingIntervalMs: 0, ...stream });
    case 'wss':
      if (!cert || !key) {
        if (!spec.clientOnly)
          throw new UsageError('--listen wss:... needs --cert FILE and --key FILE (PEM)');
        // A client: connections out only, as a browser has them (RFC 7118 §5.4).
        return new WsTransport({
          address,
          listen: false,
          secure: true,
          pingIntervalMs: 0,
          tls: { ...(ca ? { ca } : {}), ...(tls.insecure ? { rejectUnauthorized: false } : {}) },
        });
      }
      return new WsTransport({
        address,
        port,
        pingIntervalMs: 0,
        ...stream,
        tls: {
          cert,
          key,
          ...(ca ? { ca } : {}),
          ...(tls.insecure ? { rejectUnauthorized: false } : {}),
        },
      });
    default:
      throw new UsageError(`unknown protocol ${spec.protocol satisfies never}`);
  }
}

/** The connection limits of `--idle-timeout` and friends, as the stream transports take them. */
function streamLimits(l: Limits): {
  idleTimeoutMs?: number;
  firstMessageTimeoutMs?: number;
  messageTimeoutMs?: number;
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
} {
  return {
    ...(l.idleTimeoutMs !== undefined ? { idleTimeoutMs: l.idleTimeoutMs } : {}),
    ...(l.firstMessageTimeoutMs !== undefined
      ? { firstMessageTimeoutMs: l.firstMessageTimeoutMs }
      : {}),
    ...(l.messageTimeoutMs !== undefined ? { messageTimeoutMs: l.messageTimeoutMs } : {}),
    ...(l.maxHeaderBytes !== undefined ? { maxHeaderBytes: l.maxHeaderBytes } : {}),
    ...(l.maxBodyBytes !== undefined ? { maxBodyBytes: l.maxBodyBytes } : {}),
  };
}

/** `udp:127.0.0.1:5060` for a started transport (the actual port). */
export function describeTransport(t: Transport): string {
  const a = t.local;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${t.protocol.toLowerCase()}:${host}:${a.port}`;
}
