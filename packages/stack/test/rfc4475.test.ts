// RFC 4475 (SIP Torture Test Messages) at the transaction and transport layer.
//
// Each of the 49 messages arrives as one UDP datagram from a raw peer. The message layer's
// own suite checks every field; this one checks what the stack does with the datagram:
// hand it to the TU, answer it statelessly with the status its defect names, or drop it.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createResponse, type SipRequest, type SipResponse } from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import type { Logger, TransportDropEvent } from '../src/index.ts';
import { RawPeer, world } from './harness.ts';

const SHARED = fileURLToPath(new URL('../../../../shared/conformance/rfc4475/', import.meta.url));
const COPIES = fileURLToPath(new URL('../../message/test/fixtures/torture/', import.meta.url));

/** The torture message `name`, from the shared corpus or the repository's copy of it. */
function torture(name: string): Uint8Array {
  const shared = `${SHARED}${name}.dat`;
  if (existsSync(shared)) return readFileSync(shared);
  for (const group of ['valid', 'invalid', 'other']) {
    const copy = `${COPIES}${group}/${name}.dat`;
    if (existsSync(copy)) return readFileSync(copy);
  }
  throw new Error(`no torture message ${name}`);
}

function allNames(): string[] {
  if (existsSync(SHARED))
    return readdirSync(SHARED)
      .filter((f) => f.endsWith('.dat'))
      .map((f) => f.slice(0, -4));
  return ['valid', 'invalid', 'other'].flatMap((g) =>
    readdirSync(`${COPIES}${g}`)
      .filter((f) => f.endsWith('.dat'))
      .map((f) => f.slice(0, -4)),
  );
}

/** The address the peer sends from; the torture messages' Via hosts are elsewhere. */
const PEER = '192.0.2.200';

interface Outcome {
  /** Requests the TU was given. */
  requests: SipRequest[];
  /** Responses that matched no transaction, given to the TU. */
  stray: SipResponse[];
  /** Everything the peer received (on the Via port, or 5050 for quotbal). */
  received: SipResponse[];
  /** Where the stack sent each message (from `sip:transport:send`). */
  sentTo: string[];
  drops: TransportDropEvent[];
  /** Errors the TU met building its 200. */
  tuErrors: unknown[];
  /** Errors the stack logged at error level (something threw inside it). */
  logged: unknown[];
}

/**
 * A stack whose TU answers every request (except ACK) with 200, and a raw peer that sends
 * the torture message `times` times, as UDP datagrams.
 */
async function deliver(name: string, times = 1): Promise<Outcome> {
  const logged: unknown[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error: (obj) => logged.push(obj),
  };
  const w = await world({ stack: { logger } });
  const tuErrors: unknown[] = [];
  w.tu.answer = (req, tx) => {
    if (!tx) return;
    try {
      tx.respond(createResponse(req, 200, undefined, { toTag: 'tu4475' }));
    } catch (e) {
      tuErrors.push(e);
    }
  };
  const peers = [
    new RawPeer(w.network, w.clock, 5060, 'UDP', false, PEER),
    new RawPeer(w.network, w.clock, 5050, 'UDP', false, PEER),
  ];
  for (const p of peers) await p.start();
  const drops: TransportDropEvent[] = [];
  const sentTo: string[] = [];
  const onDrop = (m: unknown) => drops.push(m as TransportDropEvent);
  const onSend = (m: unknown) => {
    const e = m as { remote: { address: string; port: number } };
    sentTo.push(`${e.remote.address}:${e.remote.port}`);
  };
  subscribe('sip:transport:drop', onDrop);
  subscribe('sip:transport:send', onSend);
  try {
    const bytes = torture(name);
    for (let i = 0; i < times; i++) {
      void (peers[0] as RawPeer).transport.send(bytes, w.address);
      expect(() => w.clock.advance(100)).not.toThrow();
    }
    // Past the 100 Trying timer and the first retransmission timers.
    expect(() => w.clock.advance(1000)).not.toThrow();
  } finally {
    unsubscribe('sip:transport:drop', onDrop);
    unsubscribe('sip:transport:send', onSend);
  }
  const outcome: Outcome = {
    requests: w.tu.requests.map((r) => r.request),
    stray: [...w.tu.stray],
    received: peers.flatMap((p) => p.responses()),
    sentTo,
    drops,
    tuErrors,
    logged,
  };
  await w.stack.stop();
  expect(w.clock.pending).toBe(0);
  return outcome;
}

type Row = { file: string; section: string; title: string };
const rows = <T extends Row>(list: T[]): [string, T][] =>
  list.map((r) => [`${r.section} ${r.file}: ${r.title}`, r]);

// ---------------------------------------------------------------------------------------
// 3.1.1 Valid messages
// ---------------------------------------------------------------------------------------

const VALID_REQUESTS: (Row & { method: string })[] = [
  { file: 'wsinv', section: '3.1.1.1', title: 'A Short Tortuous INVITE', method: 'INVITE' },
  {
    file: 'intmeth',
    section: '3.1.1.2',
    title: 'Wide Range of Valid Characters',
    method: "!interesting-Method0123456789_*+`.%indeed'~",
  },
  {
    file: 'esc01',
    section: '3.1.1.3',
    title: 'Valid Use of the % Escaping Mechanism',
    method: 'INVITE',
  },
  { file: 'escnull', section: '3.1.1.4', title: 'Escaped Nulls in URIs', method: 'REGISTER' },
  {
    file: 'esc02',
    section: '3.1.1.5',
    title: 'Use of % When It Is Not an Escape',
    method: 'RE%47IST%45R',
  },
  {
    file: 'lwsdisp',
    section: '3.1.1.6',
    title: 'Message with No LWS between Display Name and <',
    method: 'OPTIONS',
  },
  { file: 'longreq', section: '3.1.1.7', title: 'Long Values in Header Fields', method: 'INVITE' },
  {
    file: 'dblreq',
    section: '3.1.1.8',
    title: 'Extra Trailing Octets in a UDP Datagram',
    method: 'REGISTER',
  },
  {
    file: 'semiuri',
    section: '3.1.1.9',
    title: 'Semicolon-Separated Parameters in URI User Part',
    method: 'OPTIONS',
  },
  {
    file: 'transports',
    section: '3.1.1.10',
    title: 'Varied and Unknown Transport Types',
    method: 'OPTIONS',
  },
  { file: 'mpart01', section: '3.1.1.11', title: 'Multipart MIME Message', method: 'MESSAGE' },
];

/**
 * Valid requests that `createResponse` of @sipworks/message cannot answer yet: it clones
 * From and To, and the clone rejects a decoded value (esc01: a From user with %20 spaces;
 * intmeth: a To display name with an escaped NUL). The stack hands them to the TU; the
 * 200 is the message layer's to fix.
 */

const VALID_RESPONSES: Row[] = [
  { file: 'unreason', section: '3.1.1.12', title: 'Unusual Reason Phrase' },
  { file: 'noreason', section: '3.1.1.13', title: 'Empty Reason Phrase' },
];

describe('RFC 4475 §3.1.1 valid messages reach the TU', () => {
  it.each(rows(VALID_REQUESTS))('%s', async (_, { file, method }) => {
    const o = await deliver(file);
    expect(o.requests.map((r) => r.method)).toEqual([method]);
    expect(o.drops).toEqual([]);
    expect(o.logged).toEqual([]);
    expect(o.tuErrors).toEqual([]);
    expect(o.received.map((r) => r.status)).toEqual([200]);
    expect(o.sentTo).toEqual([`${PEER}:5060`]);
  });

  it('3.1.1.8 dblreq: only the REGISTER within Content-Length counts; the trailing INVITE is never seen', async () => {
    const o = await deliver('dblreq');
    expect(o.requests).toHaveLength(1);
    expect(o.requests[0]?.method).toBe('REGISTER');
    expect(o.received.map((r) => r.cseq.method)).toEqual(['REGISTER']);
  });

  it.each(rows(VALID_RESPONSES))(
    '%s: a response matching no transaction goes to the TU as stray',
    async (_, { file }) => {
      const o = await deliver(file);
      expect(o.stray).toHaveLength(1);
      expect(o.requests).toEqual([]);
      expect(o.drops).toEqual([]);
      expect(o.sentTo).toEqual([]);
    },
  );
});

// ---------------------------------------------------------------------------------------
// 3.1.2 Invalid messages
// ---------------------------------------------------------------------------------------

const REJECTED: (Row & { status: number; why: RegExp; port?: number })[] = [
  {
    file: 'clerr',
    section: '3.1.2.2',
    title: 'Content Length Larger Than Message',
    status: 400,
    why: /Content-Length 9999/,
  },
  {
    file: 'ncl',
    section: '3.1.2.3',
    title: 'Negative Content-Length',
    status: 400,
    why: /Content-Length '-999'/,
  },
  {
    file: 'scalar02',
    section: '3.1.2.4',
    title: 'Request Scalar Fields with Overlarge Values',
    status: 400,
    why: /CSeq.*out of range/,
  },
  {
    file: 'quotbal',
    section: '3.1.2.6',
    title: 'Unterminated Quoted String in Display Name',
    status: 400,
    why: /To: unterminated quoted string/,
    port: 5050,
  },
  {
    file: 'ltgtruri',
    section: '3.1.2.7',
    title: '<> Enclosing Request-URI',
    status: 400,
    why: /Request-URI/,
  },
  {
    file: 'lwsruri',
    section: '3.1.2.8',
    title: 'Malformed SIP Request-URI (embedded LWS)',
    status: 400,
    why: /malformed SIP version 'lr SIP\/2\.0'/,
  },
  {
    file: 'lwsstart',
    section: '3.1.2.9',
    title: 'Multiple SP Separating Request-Line Elements',
    status: 400,
    why: /more than one space/,
  },
  {
    file: 'trws',
    section: '3.1.2.10',
    title: 'SP Characters at End of Request-Line',
    status: 400,
    why: /SIP version/,
  },
  {
    file: 'regbadct',
    section: '3.1.2.13',
    title: 'Failure to Enclose name-addr URI in <>',
    status: 400,
    why: /Contact/,
  },
  {
    file: 'badaspec',
    section: '3.1.2.14',
    title: 'Spaces within addr-spec',
    status: 400,
    why: /To: white space/,
  },
  {
    file: 'baddn',
    section: '3.1.2.15',
    title: 'Non-token Characters in Display Name',
    status: 400,
    why: /From/,
  },
  {
    file: 'badvers',
    section: '3.1.2.16',
    title: 'Unknown Protocol Version',
    status: 505,
    why: /SIP\/7\.0/,
  },
  {
    file: 'mismatch01',
    section: '3.1.2.17',
    title: 'Start Line and CSeq Method Mismatch',
    status: 400,
    why: /CSeq method INVITE does not match the request method OPTIONS/,
  },
  {
    file: 'mismatch02',
    section: '3.1.2.18',
    title: 'Unknown Method with CSeq Method Mismatch',
    status: 400,
    why: /CSeq method INVITE does not match the request method NEWMETHOD/,
  },
];

/** Rejected requests of §3.3, answered the same way by the stack. */
const REJECTED_33: typeof REJECTED = [
  {
    file: 'insuf',
    section: '3.3.1',
    title: 'Missing Required Header Fields',
    status: 400,
    why: /missing From/,
  },
  {
    file: 'multi01',
    section: '3.3.8',
    title: 'Multiple Values in Single Value Required Fields',
    status: 400,
    why: /more than one/,
  },
  {
    file: 'mcl01',
    section: '3.3.9',
    title: 'Multiple Content-Length Values',
    status: 400,
    why: /Content-Length/,
  },
];

const TOLERATED: (Row & { method: string })[] = [
  {
    file: 'escruri',
    section: '3.1.2.11',
    title: 'Escaped Headers in SIP Request-URI',
    method: 'INVITE',
  },
  {
    file: 'baddate',
    section: '3.1.2.12',
    title: 'Invalid Time Zone in Date Header Field',
    method: 'INVITE',
  },
];

const BAD_RESPONSES: Row[] = [
  { file: 'scalarlg', section: '3.1.2.5', title: 'Response Scalar Fields with Overlarge Values' },
  { file: 'bigcode', section: '3.1.2.19', title: 'Overlarge Response Code' },
];

async function expectRejected(file: string, status: number, why: RegExp, port = 5060) {
  const o = await deliver(file);
  expect(o.requests).toEqual([]);
  expect(o.logged).toEqual([]);
  // One stateless answer from the stack, back to where the datagram came from (§18.2.1:
  // `received`, since no Via names 192.0.2.200).
  expect(o.received.map((r) => r.status)).toEqual([status]);
  expect(o.sentTo).toEqual([`${PEER}:${port}`]);
  const res = o.received[0] as SipResponse;
  expect(res.reason).toMatch(why);
  expect(res.via[0]?.received).toBe(PEER);
  // And a drop event that says why, with the status answered.
  expect(o.drops).toHaveLength(1);
  expect(o.drops[0]?.status).toBe(status);
  expect(o.drops[0]?.reason).toMatch(why);
}

describe('RFC 4475 §3.1.2 invalid messages', () => {
  it.each(rows(REJECTED))(
    '%s: answered statelessly by the stack, never given to the TU',
    async (_, { file, status, why, port }) => {
      await expectRejected(file, status, why, port);
    },
  );

  it('3.1.2.1 badinv01: Extraneous Header Field Separators: the Via cannot be read, so a 400 goes straight back to the source, and the TU never sees it', async () => {
    const o = await deliver('badinv01');
    expect(o.requests).toEqual([]);
    expect(o.sentTo).toEqual([`${PEER}:5060`]);
    expect(o.drops).toHaveLength(1);
    expect(o.drops[0]?.status).toBe(400);
    expect(o.drops[0]?.reason).toMatch(/Via/);
    expect(o.logged).toEqual([]);
  });

  it.each(rows(TOLERATED))(
    '%s: tolerated, as the RFC allows: the TU gets it and answers',
    async (_, { file, method }) => {
      const o = await deliver(file);
      expect(o.requests.map((r) => r.method)).toEqual([method]);
      expect(o.received.map((r) => r.status)).toEqual([200]);
    },
  );

  it.each(rows(BAD_RESPONSES))(
    '%s: an invalid response is dropped with a sip:transport:drop event',
    async (_, { file }) => {
      const o = await deliver(file);
      expect(o.stray).toEqual([]);
      expect(o.requests).toEqual([]);
      expect(o.sentTo).toEqual([]);
      expect(o.drops).toHaveLength(1);
      expect(o.drops[0]?.status).toBeUndefined();
      expect(o.drops[0]?.protocol).toBe('UDP');
      expect(o.drops[0]?.remote).toEqual({ address: PEER, port: 5060 });
      expect(o.drops[0]?.bytes).toEqual(torture(file));
      expect(o.logged).toEqual([]);
    },
  );
});

// ---------------------------------------------------------------------------------------
// 3.2 Transaction layer, 3.4 backward compatibility
// ---------------------------------------------------------------------------------------

describe('RFC 4475 §3.2 and §3.4: matching without the magic cookie', () => {
  it('3.2.1 badbranch: Missing Transaction Identifier: matched (RFC 2543 rules), the retransmission absorbed and answered again', async () => {
    const o = await deliver('badbranch', 2);
    expect(o.requests.map((r) => r.method)).toEqual(['OPTIONS']);
    expect(o.received.map((r) => r.status)).toEqual([200, 200]);
    expect(o.received[1]?.toString()).toBe(o.received[0]?.toString());
    expect(o.received[0]?.via[0]?.branch).toBe('z9hG4bK');
  });

  it('3.4.1 inv2543: an RFC 2543 INVITE is accepted and answered; its retransmission is absorbed', async () => {
    const o = await deliver('inv2543', 2);
    expect(o.requests.map((r) => r.method)).toEqual(['INVITE']);
    // The 2xx goes out once: the INVITE server transaction is in Accepted (RFC 6026 §7.1),
    // where retransmissions are absorbed and the TU resends the 2xx.
    expect(o.received.map((r) => r.status)).toEqual([200]);
    expect(o.received[0]?.via[0]?.branch).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------
// 3.3 Application layer: the stack's part only (the DUM owns the semantic answers)
// ---------------------------------------------------------------------------------------

const TO_TU: (Row & { method: string })[] = [
  { file: 'unkscm', section: '3.3.2', title: 'Request-URI with Unknown Scheme', method: 'OPTIONS' },
  {
    file: 'novelsc',
    section: '3.3.3',
    title: 'Request-URI with Known but Atypical Scheme',
    method: 'OPTIONS',
  },
  {
    file: 'unksm2',
    section: '3.3.4',
    title: 'Unknown URI Schemes in Header Fields',
    method: 'REGISTER',
  },
  { file: 'bext01', section: '3.3.5', title: 'Proxy-Require and Require', method: 'OPTIONS' },
  { file: 'invut', section: '3.3.6', title: 'Unknown Content-Type', method: 'INVITE' },
  { file: 'regaut01', section: '3.3.7', title: 'Unknown Authorization Scheme', method: 'REGISTER' },
  { file: 'zeromf', section: '3.3.11', title: 'Max-Forwards of Zero', method: 'OPTIONS' },
  {
    file: 'cparam01',
    section: '3.3.12',
    title: 'REGISTER with a Contact Header Parameter',
    method: 'REGISTER',
  },
  {
    file: 'cparam02',
    section: '3.3.13',
    title: 'REGISTER with a url-parameter',
    method: 'REGISTER',
  },
  {
    file: 'regescrt',
    section: '3.3.14',
    title: 'REGISTER with a URL Escaped Header',
    method: 'REGISTER',
  },
  {
    file: 'sdp01',
    section: '3.3.15',
    title: 'Unacceptable Accept Offering',
    method: 'INVITE',
  },
];

describe('RFC 4475 §3.3 application-layer messages at the stack', () => {
  it.each(rows(TO_TU))(
    '%s: handed to the TU (its semantic answer belongs to the DUM)',
    async (_, { file, method }) => {
      const o = await deliver(file);
      expect(o.requests.map((r) => r.method)).toEqual([method]);
      expect(o.received.map((r) => r.status)).toEqual([200]);
      expect(o.drops).toEqual([]);
      expect(o.logged).toEqual([]);
    },
  );

  it.each(rows(REJECTED_33))(
    '%s: answered by the stack with the parse status',
    async (_, { file, status, why }) => {
      await expectRejected(file, status, why);
    },
  );

  it('3.3.10 bcast: 200 OK Response with Broadcast Via Header Field Value: a 200 matching no transaction goes to the TU; nothing is sent to the broadcast Via', async () => {
    const o = await deliver('bcast');
    expect(o.stray.map((r) => r.status)).toEqual([200]);
    expect(o.sentTo).toEqual([]);
    expect(o.requests).toEqual([]);
  });
});

describe('RFC 4475 corpus', () => {
  it('every one of the 49 messages is covered above', () => {
    const covered = new Set(
      [
        ...VALID_REQUESTS,
        ...VALID_RESPONSES,
        ...REJECTED,
        ...REJECTED_33,
        ...TOLERATED,
        ...BAD_RESPONSES,
        ...TO_TU,
      ].map((r) => r.file),
    );
    for (const f of ['badinv01', 'badbranch', 'inv2543', 'bcast']) covered.add(f);
    const names = allNames();
    expect(names).toHaveLength(49);
    expect(names.filter((n) => !covered.has(n))).toEqual([]);
    expect(covered.size).toBe(49);
  });
});
