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

/**
 * The answer to an offer (RFC 3264 §6): for each m= line, the codecs we know among those
 * offered, in the offer's order; a stream with none, or of a type other than audio, is
 * refused with port 0. The direction mirrors the offer's (sendonly -> recvonly...).
 * Throws when the offer is not SDP.
 */
export function makeAnswer(offer: string, address: string, port = 40002): string {
  const o = parse(offer);
  if (o.media === undefined || o.media.length === 0)
    throw new Error('the offer has no media lines (m=)');
  const v6 = address.includes(':');
  const mirrored: Record<string, 'sendrecv' | 'recvonly' | 'sendonly' | 'inactive'> = {
    sendrecv: 'sendrecv',
    sendonly: 'recvonly',
    recvonly: 'sendonly',
    inactive: 'inactive',
  };
  const media = o.media.map((m, i) => {
    const offered = String(m.payloads ?? '')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    const named = (pt: number) =>
      m.rtp?.find((r) => r.payload === pt) ??
      CODECS.find((c) => c.payload === pt && pt < 96) ??
      undefined;
    const ours = offered.filter((pt) => {
      const r = named(pt);
      return r !== undefined && CODECS.some((c) => c.codec.toLowerCase() === r.codec.toLowerCase());
    });
    const accepted = m.type === 'audio' && ours.length > 0;
    const payloads = accepted ? ours : [offered[0] ?? 0];
    return {
      type: m.type,
      port: accepted ? port + 2 * i : 0,
      protocol: m.protocol,
      payloads: payloads.join(' '),
      rtp: payloads.flatMap((pt) => {
        const r = named(pt);
        return r ? [{ payload: pt, codec: r.codec, rate: r.rate }] : [];
      }),
      fmtp: (m.fmtp ?? []).filter((f) => payloads.includes(f.payload)),
      direction: mirrored[m.direction ?? 'sendrecv'] ?? 'sendrecv',
    } as SessionDescription['media'][number];
  });
  return write({
    version: 0,
    origin: origin(address, 1),
    name: 'sipworks',
    connection: { version: v6 ? 6 : 4, ip: address },
    timing: { start: 0, stop: 0 },
    media,
  });
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
