import { parse, type SessionDescription, write } from 'sdp-transform';

/** Audio codecs the CLI offers and accepts: PCMU, PCMA and telephone-event (RFC 4733). */
const CODECS = [
  { payload: 0, codec: 'PCMU', rate: 8000 },
  { payload: 8, codec: 'PCMA', rate: 8000 },
  { payload: 101, codec: 'telephone-event', rate: 8000 },
];

function origin(address: string, version: number): SessionDescription['origin'] {
  const v6 = address.includes(':');
  return {
    username: 'sipworks',
    sessionId: Date.now(),
    sessionVersion: version,
    netType: 'IN',
    ipVer: v6 ? 6 : 4,
    address,
  };
}

/**
 * A small SDP offer (RFC 4566, RFC 3264 §5): one audio stream on `port` at `address`,
 * PCMU, PCMA and telephone-event. No media is sent; the description is what a phone
 * would offer.
 */
export function makeOffer(address: string, port = 40000): string {
  const v6 = address.includes(':');
  const sd: SessionDescription = {
    version: 0,
    origin: origin(address, 1),
    name: 'sipworks',
    connection: { version: v6 ? 6 : 4, ip: address },
    timing: { start: 0, stop: 0 },
    media: [
      {
        type: 'audio',
        port,
        protocol: 'RTP/AVP',
        payloads: CODECS.map((c) => c.payload).join(' '),
        rtp: CODECS.map((c) => ({ payload: c.payload, codec: c.codec, rate: c.rate })),
        fmtp: [{ payload: 101, config: '0-16' }],
        direction: 'sendrecv',
      },
    ],
  };
  return write(sd);
}

/** One m= section of an offer, as far as the answer needs it. */
interface OfferedMedia {
  type: string;
  protocol: string;
  payloads: number[];
  /** a=rtpmap: payload type -> codec and clock rate. */
  rtp: Map<number, { codec: string; rate: number }>;
  /** a=fmtp lines in the offer's order. */
  fmtp: { payload: number; config: string }[];
  direction: string | undefined;
}

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);
const MIRRORED: Record<string, string> = {
  sendrecv: 'sendrecv',
  sendonly: 'recvonly',
  recvonly: 'sendonly',
  inactive: 'inactive',
};

/**
 * The m= sections of an SDP body (RFC 4566 §5.14) with the attributes an answer reads:
 * rtpmap, fmtp and the direction. Lines it does not need are skipped unread; this runs
 * for every call `serve` answers, so it is a line scan, not a full parse.
 */
function offeredMedia(offer: string): OfferedMedia[] {
  const media: OfferedMedia[] = [];
  let m: OfferedMedia | undefined;
  for (const raw of offer.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith('m=')) {
      const [type = '', , protocol = '', ...fmts] = line.slice(2).trim().split(/\s+/);
      m = {
        type,
        protocol,
        payloads: fmts.map(Number).filter((n) => Number.isInteger(n)),
        rtp: new Map(),
        fmtp: [],
        direction: undefined,
      };
      media.push(m);
    } else if (m && line.startsWith('a=')) {
      const attr = line.slice(2);
      if (attr.startsWith('rtpmap:')) {
        const r = /^rtpmap:(\d+)\s+([^/\s]+)\/(\d+)/.exec(attr);
        if (r) m.rtp.set(Number(r[1]), { codec: r[2] as string, rate: Number(r[3]) });
      } else if (attr.startsWith('fmtp:')) {
        const f = /^fmtp:(\d+)\s+(.*)$/.exec(attr);
        if (f) m.fmtp.push({ payload: Number(f[1]), config: f[2] as string });
      } else if (DIRECTIONS.has(attr.trim())) m.direction = attr.trim();
    }
  }
  return media;
}

/**
 * The answer to an offer (RFC 3264 §6): for each m= line, the codecs we know among those
 * offered, in the offer's order; a stream with none, or of a type other than audio, is
 * refused with port 0. The direction mirrors the offer's (sendonly -> recvonly...).
 * Throws when the offer has no m= line.
 */
export function makeAnswer(offer: string, address: string, port = 40002): string {
  const media = offeredMedia(offer);
  if (media.length === 0) throw new Error('the offer has no media lines (m=)');
  const ip = address.includes(':') ? 6 : 4;
  let out =
    `v=0\r\no=sipworks ${Date.now()} 1 IN IP${ip} ${address}\r\ns=sipworks\r\n` +
    `c=IN IP${ip} ${address}\r\nt=0 0\r\n`;
  media.forEach((m, i) => {
    const named = (pt: number) =>
      m.rtp.get(pt) ?? CODECS.find((c) => c.payload === pt && pt < 96) ?? undefined;
    const ours = m.payloads.filter((pt) => {
      const r = named(pt);
      return r !== undefined && CODECS.some((c) => c.codec.toLowerCase() === r.codec.toLowerCase());
    });
    const accepted = m.type === 'audio' && ours.length > 0;
    const payloads = accepted ? ours : [m.payloads[0] ?? 0];
    out += `m=${m.type} ${accepted ? port + 2 * i : 0} ${m.protocol} ${payloads.join(' ')}\r\n`;
    for (const pt of payloads) {
      const r = named(pt);
      if (r) out += `a=rtpmap:${pt} ${r.codec}/${r.rate}\r\n`;
    }
    for (const f of m.fmtp)
      if (payloads.includes(f.payload)) out += `a=fmtp:${f.payload} ${f.config}\r\n`;
    out += `a=${MIRRORED[m.direction ?? 'sendrecv'] ?? 'sendrecv'}\r\n`;
  });
  return out;
}

/** The codecs of the first audio stream (`PCMU/8000`...), for printing. */
export function describeSdp(sdp: string): string {
  try {
    const a = parse(sdp).media.find((m) => m.type === 'audio');
    if (!a) return 'no audio';
    return `${a.port === 0 ? 'refused' : `audio ${a.port}`} ${a.rtp.map((r) => `${r.codec}/${r.rate}`).join(' ')}`;
  } catch {
    return 'unreadable SDP';
  }
}

/** A media direction attribute (RFC 3264 §5.1). */
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/**
 * A new version of `sdp` with every stream set to `direction` and the origin's version
 * raised by one (RFC 3264 §8: the same session, modified). `sendonly` puts the peer on
 * hold (§8.4), `sendrecv` takes it off. Throws when `sdp` is not SDP.
 */
export function withDirection(sdp: string, direction: Direction): string {
  const d = parse(sdp);
  if (d.media === undefined || d.media.length === 0)
    throw new Error('the description has no media lines (m=)');
  if (d.origin) d.origin.sessionVersion = Number(d.origin.sessionVersion) + 1;
  for (const m of d.media) m.direction = direction;
  return write(d);
}
