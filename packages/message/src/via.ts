import { TOKEN } from './chars.ts';
import { SipParseError } from './errors.ts';
import type { Lexer } from './lexer.ts';
import {
  NO_PARAMS,
  Params,
  type ParamsInit,
  paramEntries,
  paramIn,
  paramsOf,
  parseHeaderParams,
} from './params.ts';
import { parseHostPort } from './uri.ts';

/** The RFC 3261 §8.1.1.7 magic cookie that starts every compliant branch. */
export const MAGIC_COOKIE = 'z9hG4bK';

/**
 * A Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=...;received=...;rport`.
 */
export class Via {
  /** `SIP` */
  readonly protocolName: string;
  /** `2.0` */
  readonly protocolVersion: string;
  /** Transport as written, upper-cased (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`...). */
  readonly transport: string;
  /** sent-by host; IPv6 references keep their brackets. */
  readonly host: string;
  /** sent-by port, when present. */
  readonly port: number | undefined;
  /** @internal the parameters, as parsed names and values until `params` is read */
  p: Params | (string | null)[];

  /** `transport` is upper-cased as `SIP/2.0/UDP` writes it. */
  constructor(
    transport: string,
    host: string,
    port?: number,
    params?: ParamsInit,
    /** @internal already upper-cased (parsed) */ parsed?: boolean,
  ) {
    this.protocolName = 'SIP';
    this.protocolVersion = '2.0';
    this.transport = parsed ? transport : transport.toUpperCase();
    this.host = host;
    this.port = port;
    this.p = params === undefined ? NO_PARAMS : new Params('header', paramEntries(params));
  }

  get params(): Params {
    const p = this.p;
    if (!Array.isArray(p)) return p;
    const q = paramsOf(p);
    this.p = q;
    return q;
  }

  private param(name: string): string | null | undefined {
    const p = this.p;
    return Array.isArray(p) ? paramIn(p, name) : p.get(name);
  }

  /** `SIP/2.0` */
  get protocol(): string {
    return `${this.protocolName}/${this.protocolVersion}`;
  }

  get branch(): string | undefined {
    return this.param('branch') ?? undefined;
  }

  get received(): string | undefined {
    return this.param('received') ?? undefined;
  }

  /** RFC 3581: `null` when the flag is present without a value, the port when filled in, `undefined` when absent. */
  get rport(): number | null | undefined {
    const v = this.param('rport');
    if (v === undefined || v === null) return v;
    const n = Number(v);
    if (!/^\d{1,5}$/.test(v) || n > 65535)
      throw new SipParseError('SIP_ERR_PARSE_HEADER', `Via: invalid rport '${v}'`, -1, 400, 'Via');
    return n;
  }

  get maddr(): string | undefined {
    return this.param('maddr') ?? undefined;
  }

  get ttl(): number | undefined {
    const v = this.param('ttl');
    if (v === undefined || v === null) return undefined;
    if (!/^\d{1,3}$/.test(v) || Number(v) > 255)
      throw new SipParseError('SIP_ERR_PARSE_HEADER', `Via: invalid ttl '${v}'`, -1, 400, 'Via');
    return Number(v);
  }

  /** Whether the branch carries the RFC 3261 magic cookie. */
  get rfc3261(): boolean {
    return this.branch?.startsWith(MAGIC_COOKIE) ?? false;
  }

  /** `host:port` as written in sent-by. */
  get sentBy(): string {
    return this.port === undefined ? this.host : `${this.host}:${this.port}`;
  }

  get dirty(): boolean {
    const p = this.p;
    return !Array.isArray(p) && p.dirty;
  }

  clone(): Via {
    const v = new Via(this.transport, this.host, this.port, this.params);
    (v as { protocolName: string }).protocolName = this.protocolName;
    (v as { protocolVersion: string }).protocolVersion = this.protocolVersion;
    return v;
  }

  toString(): string {
    return `${this.protocolName}/${this.protocolVersion}/${this.transport} ${this.sentBy}${this.params}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Parse one Via value at the lexer's position. */
export function parseVia(lx: Lexer): Via {
  lx.ws();
  const s = lx.s;
  const start = lx.i;
  let name = 'SIP';
  let version = '2.0';
  let transport: string;
  if (s.startsWith('SIP/2.0/', start)) {
    // The usual case, without white space around the slashes.
    lx.i = start + 8;
    transport = transportName(s, lx);
  } else {
    name = lx.token('a protocol name');
    lx.expect(47, "'/'");
    version = lx.token('a protocol version');
    lx.expect(47, "'/'");
    transport = lx.token('a transport').toUpperCase();
  }
  lx.ws();
  const [host, port, end] = parseHostPort(s, lx.i, lx.end, 'Via sent-by');
  lx.i = end;
  const v = new Via(transport, host, port, undefined, true);
  if (name !== 'SIP' || version !== '2.0') {
    (v as { protocolName: string }).protocolName = name;
    (v as { protocolVersion: string }).protocolVersion = version;
  }
  parseHeaderParams(lx, v.params);
  return v;
}

const TRANSPORTS = ['UDP', 'TCP', 'TLS', 'WS', 'WSS', 'SCTP'];

/** The transport token, upper-cased; the common ones without allocating. */
function transportName(s: string, lx: Lexer): string {
  for (const t of TRANSPORTS) {
    if (s.startsWith(t, lx.i)) {
      const c = s.charCodeAt(lx.i + t.length);
      if (!(c < 128 && TOKEN[c] === 1)) {
        lx.i += t.length;
        return t;
      }
    }
  }
  return lx.token('a transport').toUpperCase();
}
