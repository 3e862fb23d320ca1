/**
 * The few STUN messages (RFC 5389) a SIP stack needs: the Binding request a UA sends as a
 * keep-alive on a datagram flow, and the Binding success response a SIP server answers it
 * with on its SIP port (RFC 5626 §4.4.2, §8). STUN and SIP share the port: a STUN message
 * starts with two zero bits and carries the magic cookie, a SIP message starts with a
 * letter, so one look at the first bytes tells them apart (RFC 5626 §5.4, RFC 7983).
 */

/** The fixed value in bytes 4-7 of every STUN message (RFC 5389 §6). */
export const STUN_MAGIC_COOKIE = 0x2112a442;
const HEADER = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;
const MAPPED_ADDRESS = 0x0001;

/** A STUN message as far as keep-alives need it. */
export interface StunMessage {
  /** `request` (Binding request), `success` (Binding success response) or `other`. */
  kind: 'request' | 'success' | 'other';
  /** The 96-bit transaction id, as 24 hex digits. */
  transactionId: string;
  /** The reflexive address of a success response (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS). */
  mapped?: { address: string; port: number } | undefined;
}

/** Whether a datagram is a STUN message: two zero bits, the magic cookie, and a length that fits. */
export function isStun(data: Uint8Array): boolean {
  if (data.length < HEADER || (data[0] as number) & 0xc0) return false;
  if (readU32(data, 4) !== STUN_MAGIC_COOKIE) return false;
  const length = readU16(data, 2);
  return length % 4 === 0 && HEADER + length === data.length;
}

/** Read a STUN message; undefined when it is not one (see `isStun`) or its attributes do not parse. */
export function parseStun(data: Uint8Array): StunMessage | undefined {
  if (!isStun(data)) return undefined;
  const type = readU16(data, 0);
  const tid = data.subarray(8, 20);
  const kind =
    type === BINDING_REQUEST ? 'request' : type === BINDING_SUCCESS ? 'success' : 'other';
  let mapped: StunMessage['mapped'];
  let plain: StunMessage['mapped'];
  for (let at = HEADER; at + 4 <= data.length; ) {
    const attr = readU16(data, at);
    const len = readU16(data, at + 2);
    const value = at + 4;
    if (value + len > data.length) return undefined;
    if (attr === XOR_MAPPED_ADDRESS) mapped = readAddress(data, value, len, tid);
    else if (attr === MAPPED_ADDRESS) plain = readAddress(data, value, len, undefined);
    at = value + len + ((4 - (len % 4)) % 4);
  }
  return { kind, transactionId: hex(tid), mapped: mapped ?? plain };
}

/** A Binding request with a fresh transaction id (12 random bytes, hex), no attributes. */
export function bindingRequest(transactionId: string): Uint8Array {
  const out = new Uint8Array(HEADER);
  writeHeader(out, BINDING_REQUEST, 0, transactionId);
  return out;
}

/** The Binding success response to `transactionId`, with the XOR-MAPPED-ADDRESS of `source`. */
export function bindingSuccess(
  transactionId: string,
  source: { address: string; port: number },
): Uint8Array {
  const ip = ipBytes(source.address);
  const attrLen = 4 + ip.length;
  const out = new Uint8Array(HEADER + 4 + attrLen);
  writeHeader(out, BINDING_SUCCESS, 4 + attrLen, transactionId);
  const tid = out.subarray(8, 20);
  writeU16(out, HEADER, XOR_MAPPED_ADDRESS);
  writeU16(out, HEADER + 2, attrLen);
  out[HEADER + 4] = 0;
  out[HEADER + 5] = ip.length === 4 ? 0x01 : 0x02;
  writeU16(out, HEADER + 6, source.port ^ (STUN_MAGIC_COOKIE >>> 16));
  const key = xorKey(tid);
  for (let i = 0; i < ip.length; i++) out[HEADER + 8 + i] = (ip[i] as number) ^ (key[i] as number);
  return out;
}

/** 12 random bytes as hex: a transaction id (RFC 5389 §6: uniformly random). */
export function newTransactionId(random: (bytes: Uint8Array) => void): string {
  const b = new Uint8Array(12);
  random(b);
  return hex(b);
}

function writeHeader(out: Uint8Array, type: number, length: number, transactionId: string): void {
  if (!/^[0-9a-f]{24}$/i.test(transactionId))
    throw new RangeError('a STUN transaction id is 12 bytes (24 hex digits)');
  writeU16(out, 0, type);
  writeU16(out, 2, length);
  writeU32(out, 4, STUN_MAGIC_COOKIE);
  for (let i = 0; i < 12; i++)
    out[8 + i] = Number.parseInt(transactionId.slice(2 * i, 2 * i + 2), 16);
}

/** The 16 bytes an address is XORed with: the magic cookie, then the transaction id. */
function xorKey(tid: Uint8Array): Uint8Array {
  const key = new Uint8Array(16);
  writeU32(key, 0, STUN_MAGIC_COOKIE);
  key.set(tid, 4);
  return key;
}

function readAddress(
  data: Uint8Array,
  at: number,
  len: number,
  tid: Uint8Array | undefined,
): { address: string; port: number } | undefined {
  const family = data[at + 1];
  const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (size === 0 || len < 4 + size) return undefined;
  const key = tid ? xorKey(tid) : new Uint8Array(16);
  const port = readU16(data, at + 2) ^ (tid ? STUN_MAGIC_COOKIE >>> 16 : 0);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (data[at + 4 + i] as number) ^ (key[i] as number);
  return { address: size === 4 ? [...b].join('.') : ipv6Text(b), port };
}

function ipBytes(address: string): Uint8Array {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (v4) return Uint8Array.from(v4.slice(1).map(Number));
  let a = address.startsWith('[') ? address.slice(1, -1) : address;
  const pct = a.indexOf('%');
  if (pct >= 0) a = a.slice(0, pct);
  // An IPv4-mapped tail (::ffff:192.0.2.1) becomes two groups.
  const tail = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (tail) {
    const n = tail.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, tail.index)}${((n[0] << 8) | n[1]).toString(16)}:${((n[2] << 8) | n[3]).toString(16)}`;
  }
  const [head = '', rest] = a.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const groups =
    rest === undefined
      ? left
      : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) throw new RangeError(`not an IP address: ${address}`);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push((((b[i] as number) << 8) | (b[i + 1] as number)).toString(16));
  return groups.join(':');
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function readU16(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 8) | (b[at + 1] as number);
}

function readU32(b: Uint8Array, at: number): number {
  return (readU16(b, at) * 0x10000 + readU16(b, at + 2)) >>> 0;
}

function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  writeU16(b, at, v >>> 16);
  writeU16(b, at + 2, v & 0xffff);
}
