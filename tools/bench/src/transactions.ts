/**
 * The transactions section: transactions per second through two SipStacks in
 * one process on the in-memory transport, and the heap a live server
 * transaction holds while it waits in Completed.
 *
 * Throughput: a client stack and a server stack on a MemoryNetwork driven by
 * the system clock (unreliable transports, no faults). A closed loop keeps a
 * fixed window of transactions outstanding and replaces each one as it
 * completes; every slice builds a fresh pair of stacks, so transactions that
 * linger in Completed or Accepted (Timers J, K, L, M) never pile up across
 * slices. A third contender runs the same loop over the bare network with no
 * stack, the floor set by the in-memory transport itself.
 *
 * Retained heap: a server stack on a VirtualClock that never advances, so no
 * retransmission or expiry timer fires, receives N requests from a bare
 * MemoryTransport, and its TU answers each with a final response. The growth
 * of the heap, divided by N, is what one server transaction in Completed
 * costs, with its request, its last response, its timers and its table entries.
 */
import {
  createRequest,
  createResponse,
  type NameAddr,
  parseHeader,
  parseUri,
  type SipRequest,
  type SipResponse,
} from '@sipworks/message';
import {
  type ClientTransactionHandler,
  DEFAULT_TIMERS,
  MemoryNetwork,
  MemoryTransport,
  SipStack,
  type TransactionUser,
  type TransportSink,
} from '@sipworks/stack';
import { VirtualClock } from '@sipworks/stack/testing';
import {
  type AsyncTimed,
  type BenchConfig,
  type Column,
  canCollect,
  collect,
  formatBytes,
  formatRate,
  formatRateShort,
  formatRatio,
  formatTable,
  heading,
  heldHeapBytes,
  interleavedRoundsAsync,
  median,
  perRoundRatios,
  type Section,
} from './harness.ts';

/** Transactions kept outstanding by the closed loop. */
const WINDOW = 200;
/** The INVITE server transaction's retained-heap target, in bytes. */
const TARGET_BYTES = 6 * 1024;
/** Live transactions in the retained-heap measurement (fewer with BENCH_RETAIN or BENCH_QUICK). */
const RETAIN_MAX = 10_000;
/** How long a slice may wait for its outstanding transactions before giving up on them. */
const DRAIN_LIMIT_MS = 5_000;

const SERVER = { address: '127.0.0.1', port: 5060 } as const;
const CLIENT = { address: '127.0.0.1', port: 5070 } as const;

const utf8 = new TextEncoder();

function nameAddr(header: string, text: string): NameAddr {
  return parseHeader<NameAddr>(header, text)[0] as NameAddr;
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] as string;
}

const SDP_OFFER = [
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 127.0.0.1',
  's=Talk',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 49170 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join('\r\n');

const SDP_ANSWER = [
  'v=0',
  'o=bob 2808844564 2808844564 IN IP4 127.0.0.1',
  's=-',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 3456 RTP/AVP 0 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=sendrecv',
  '',
].join('\r\n');

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, SUBSCRIBE, MESSAGE';

// --- closed loop -----------------------------------------------------------------

/** Starts one unit of work; calls `ok` when it completes, `fail` when it fails. */
type Issue = (ok: () => void, fail: (error: unknown) => void) => void;

interface LoopResult {
  /** Units completed up to and including the one that crossed the deadline. */
  readonly units: number;
  /** From the first issue to the completion that crossed the deadline. */
  readonly ms: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  /** Units still outstanding when the drain limit ran out (0 when all finished). */
  readonly stalled: number;
}

/**
 * Keeps `window` units outstanding until `sliceMs` have passed, then lets the
 * outstanding ones finish (without counting them) and resolves.
 */
function closedLoop(window: number, sliceMs: number, issue: Issue): Promise<LoopResult> {
  return new Promise((resolve) => {
    const start = performance.now();
    const deadline = start + sliceMs;
    let outstanding = 0;
    let units = 0;
    let failed = 0;
    let firstError: string | undefined;
    let end = 0;
    let closed = false;
    let settled = false;
    let guard: ReturnType<typeof setTimeout> | undefined;
    let fallback: ReturnType<typeof setTimeout> | undefined;

    const settle = (stalled: number): void => {
      if (settled) return;
      settled = true;
      if (guard !== undefined) clearTimeout(guard);
      if (fallback !== undefined) clearTimeout(fallback);
      resolve({ units, ms: end - start, failed, firstError, stalled });
    };
    const close = (now: number): void => {
      closed = true;
      end = now;
      guard = setTimeout(() => settle(outstanding), DRAIN_LIMIT_MS);
    };
    const next = (): void => {
      outstanding--;
      if (!closed) {
        const now = performance.now();
        if (now < deadline) {
          outstanding++;
          issue(ok, fail);
          return;
        }
        close(now);
      }
      if (outstanding === 0) settle(0);
    };
    const ok = (): void => {
      if (!closed) units++;
      next();
    };
    const fail = (error: unknown): void => {
      failed++;
      firstError ??= reasonOf(error);
      next();
    };

    for (let i = 0; i < window; i++) {
      outstanding++;
      issue(ok, fail);
    }
    // A loop in which nothing ever completes still ends.
    fallback = setTimeout(() => {
      if (!closed) close(performance.now());
      if (outstanding === 0) settle(0);
    }, sliceMs + DRAIN_LIMIT_MS);
  });
}

/** Resolves once `done()` holds, or after `limitMs`. */
async function waitUntil(done: () => boolean, limitMs: number): Promise<void> {
  const until = performance.now() + limitMs;
  while (!done() && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 1));
  }
}

// --- throughput contenders ------------------------------------------------------

/** What every contender adds up across its slices, for the checks printed under the table. */
interface Tally {
  units: number;
  failed: number;
  stalled: number;
  firstError: string | undefined;
  /** INVITE: ACKs that reached the server's TU, and calls they should match. */
  acks: number;
  calls: number;
}

interface Contender extends AsyncTimed {
  readonly unit: string;
  /** Datagrams on the network per completed unit. */
  readonly datagrams: string;
  readonly tally: Tally;
}

function newTally(): Tally {
  return { units: 0, failed: 0, stalled: 0, firstError: undefined, acks: 0, calls: 0 };
}

function record(tally: Tally, r: LoopResult): void {
  tally.units += r.units;
  tally.failed += r.failed;
  tally.stalled += r.stalled;
  tally.firstError ??= r.firstError;
}

interface Pair {
  readonly client: SipStack;
  readonly server: SipStack;
  stop(): Promise<void>;
}

/** A client and a server stack on a fresh MemoryNetwork with the system clock. */
async function stackPair(tu: TransactionUser): Promise<Pair> {
  const network = new MemoryNetwork();
  const server = new SipStack();
  const client = new SipStack();
  await server.addTransport(new MemoryTransport({ network, ...SERVER }));
  await client.addTransport(new MemoryTransport({ network, ...CLIENT }));
  server.setTransactionUser(tu);
  client.setTransactionUser({ onRequest() {} });
  await server.start();
  await client.start();
  return {
    client,
    server,
    async stop() {
      await client.stop();
      await server.stop();
    },
  };
}

/** The parts every request of the loop shares, parsed once. */
function requestParts() {
  return {
    uri: parseUri(`sip:bench@${SERVER.address}:${SERVER.port}`),
    from: nameAddr('From', `"Bench" <sip:client@${CLIENT.address}:${CLIENT.port}>`),
    to: nameAddr('To', `<sip:bench@${SERVER.address}:${SERVER.port}>`),
    contact: nameAddr('Contact', `<sip:client@${CLIENT.address}:${CLIENT.port}>`),
  };
}

function taggedFrom(from: NameAddr, tag: string): NameAddr {
  const f = from.clone();
  f.params.set('tag', tag);
  return f;
}

function optionsContender(): Contender {
  const tally = newTally();
  const parts = requestParts();
  let run = 0;
  return {
    name: 'OPTIONS -> 200',
    unit: 'transaction',
    datagrams: '2',
    tally,
    async slice(sliceMs) {
      let tags = 0;
      const pair = await stackPair({
        onRequest(request, tx) {
          tx?.respond(createResponse(request, 200, undefined, { toTag: `s${tags++}` }));
        },
      });
      const salt = `${run++}`;
      let seq = 0;
      const issue: Issue = (ok, fail) => {
        const n = seq++;
        const request = createRequest({
          method: 'OPTIONS',
          uri: parts.uri,
          from: taggedFrom(parts.from, `c${n}`),
          to: parts.to,
          callId: `${n}.${salt}@bench`,
          cseq: 1,
          contact: parts.contact,
          headers: [['Accept', 'application/sdp']],
        });
        pair.client.sendRequest(request, {
          onResponse(response) {
            if (response.status < 200) return;
            if (response.status === 200) ok();
            else fail(new Error(`OPTIONS answered ${response.status}`));
          },
          onError: fail,
        });
      };
      const r = await closedLoop(WINDOW, sliceMs, issue);
      record(tally, r);
      await pair.stop();
      return r;
    },
  };
}

/** The ACK for a 2xx (RFC 3261 §13.2.2.4): a request of its own, with a new branch. */
function ackFor(invite: SipRequest, ok: SipResponse): SipRequest {
  return createRequest({
    method: 'ACK',
    uri: ok.contacts[0]?.uri ?? invite.uri,
    from: invite.from,
    to: ok.to,
    callId: invite.callId,
    cseq: invite.cseq.seq,
  });
}

const IGNORE_RESPONSES: ClientTransactionHandler = { onResponse() {} };

function inviteContender(): Contender {
  const tally = newTally();
  const parts = requestParts();
  const serverContact = `<sip:bench@${SERVER.address}:${SERVER.port}>`;
  let run = 0;
  return {
    name: 'INVITE -> 200, ACK',
    unit: 'call',
    datagrams: '3',
    tally,
    async slice(sliceMs) {
      let tags = 0;
      let acks = 0;
      const pair = await stackPair({
        onRequest(request, tx) {
          if (tx === undefined) {
            if (request.method === 'ACK') acks++;
            return;
          }
          tx.respond(
            createResponse(request, 200, undefined, {
              toTag: `s${tags++}`,
              headers: [
                ['Contact', serverContact],
                ['Allow', ALLOW],
              ],
              body: SDP_ANSWER,
              contentType: 'application/sdp',
            }),
          );
        },
      });
      const salt = `${run++}`;
      let seq = 0;
      let calls = 0;
      const issue: Issue = (ok, fail) => {
        const n = seq++;
        const invite = createRequest({
          method: 'INVITE',
          uri: parts.uri,
          from: taggedFrom(parts.from, `c${n}`),
          to: parts.to,
          callId: `${n}.${salt}@bench`,
          cseq: 1,
          contact: parts.contact,
          headers: [['Allow', ALLOW]],
          body: SDP_OFFER,
          contentType: 'application/sdp',
        });
        let answered = false;
        pair.client.sendRequest(invite, {
          onResponse(response) {
            if (response.status < 200 || answered) return;
            answered = true;
            if (response.status >= 300) {
              fail(new Error(`INVITE answered ${response.status}`));
              return;
            }
            pair.client.sendRequest(ackFor(invite, response), IGNORE_RESPONSES);
            calls++;
            ok();
          },
          onError(error) {
            if (answered) return;
            answered = true;
            fail(error);
          },
        });
      };
      const r = await closedLoop(WINDOW, sliceMs, issue);
      await waitUntil(() => acks >= calls, 200);
      record(tally, r);
      tally.acks += acks;
      tally.calls += calls;
      await pair.stop();
      return r;
    },
  };
}

/** The same closed loop over the bare network: one datagram out, one back, no stack. */
function networkContender(): Contender {
  const tally = newTally();
  const request = utf8.encode(
    [
      `OPTIONS sip:bench@${SERVER.address}:${SERVER.port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${CLIENT.address}:${CLIENT.port};rport;branch=z9hG4bK.bench.1`,
      'Max-Forwards: 70',
      `To: <sip:bench@${SERVER.address}:${SERVER.port}>`,
      `From: "Bench" <sip:client@${CLIENT.address}:${CLIENT.port}>;tag=c1`,
      'Call-ID: 1.0@bench',
      'CSeq: 1 OPTIONS',
      `Contact: <sip:client@${CLIENT.address}:${CLIENT.port}>`,
      'Accept: application/sdp',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
  const response = utf8.encode(
    [
      'SIP/2.0 200 OK',
      `Via: SIP/2.0/UDP ${CLIENT.address}:${CLIENT.port};rport=${CLIENT.port};branch=z9hG4bK.bench.1;received=${CLIENT.address}`,
      `From: "Bench" <sip:client@${CLIENT.address}:${CLIENT.port}>;tag=c1`,
      `To: <sip:bench@${SERVER.address}:${SERVER.port}>;tag=s1`,
      'Call-ID: 1.0@bench',
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
  const quiet = { connectionClosed() {}, error() {} };
  return {
    name: 'memory network only (no stack)',
    unit: 'round trip',
    datagrams: '2',
    tally,
    async slice(sliceMs) {
      const network = new MemoryNetwork();
      const server = new MemoryTransport({ network, ...SERVER });
      const client = new MemoryTransport({ network, ...CLIENT });
      const waiting: (() => void)[] = [];
      const serverSink: TransportSink = {
        ...quiet,
        receive(_data, source) {
          void server.send(response, { address: source.address, port: source.port });
        },
      };
      const clientSink: TransportSink = {
        ...quiet,
        receive() {
          waiting.shift()?.();
        },
      };
      await server.start(serverSink);
      await client.start(clientSink);
      const issue: Issue = (ok, fail) => {
        waiting.push(ok);
        client.send(request, SERVER).catch(fail);
      };
      const r = await closedLoop(WINDOW, sliceMs, issue);
      record(tally, r);
      await client.stop();
      await server.stop();
      return r;
    },
  };
}

// --- retained heap ----------------------------------------------------------------

interface Retention {
  readonly label: string;
  readonly count: number;
  /** Bytes per live transaction, or undefined without --expose-gc. */
  readonly perTx: number | undefined;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** Server transactions alive at the after snapshot. */
  readonly live: number;
  /** How many of them the TU saw in the expected state right after responding. */
  readonly inState: number;
  readonly state: string;
  /** Timers pending on the virtual clock at the after snapshot. */
  readonly timers: number;
  readonly expectedTimers: number;
  readonly responses: number;
}

interface RetentionCase {
  readonly label: string;
  readonly method: 'INVITE' | 'OPTIONS';
  readonly status: number;
  /** Timers each transaction keeps pending in Completed. */
  readonly timersPerTx: number;
  readonly timerNames: string;
}

const RETENTION_CASES: readonly RetentionCase[] = [
  {
    label: 'INVITE server, 486 sent',
    method: 'INVITE',
    status: 486,
    timersPerTx: 2,
    timerNames: 'G, H',
  },
  {
    label: 'non-INVITE server (OPTIONS), 200 sent',
    method: 'OPTIONS',
    status: 200,
    timersPerTx: 1,
    timerNames: 'J',
  },
];

/** The datagram a bare client sends: a request as a UA writes it, unique per `i`. */
function rawRequest(method: 'INVITE' | 'OPTIONS', i: number): Uint8Array {
  const head = [
    `${method} sip:bench@${SERVER.address}:${SERVER.port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${CLIENT.address}:${CLIENT.port};rport;branch=z9hG4bK.r${i}.${method.length}`,
    'Max-Forwards: 70',
    `From: "Bench" <sip:client@${CLIENT.address}:${CLIENT.port}>;tag=f${i}`,
    `To: <sip:bench@${SERVER.address}:${SERVER.port}>`,
    `Call-ID: ${i}.retain@bench`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:client@${CLIENT.address}:${CLIENT.port}>`,
    `Allow: ${ALLOW}`,
  ];
  const body = method === 'INVITE' ? SDP_OFFER : '';
  if (method === 'INVITE') head.push('Content-Type: application/sdp');
  else head.push('Accept: application/sdp');
  head.push(`Content-Length: ${utf8.encode(body).length}`);
  return utf8.encode(`${head.join('\r\n')}\r\n\r\n${body}`);
}

interface ServerRig {
  readonly clock: VirtualClock;
  readonly stack: SipStack;
  readonly client: MemoryTransport;
  readonly counts: { responses: number; inState: number; responseBytes: number };
  stop(): Promise<void>;
}

async function serverRig(c: RetentionCase): Promise<ServerRig> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock });
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, ...SERVER }));
  const counts = { responses: 0, inState: 0, responseBytes: 0 };
  let tags = 0;
  stack.setTransactionUser({
    onRequest(request, tx) {
      if (tx === undefined) return;
      tx.respond(createResponse(request, c.status, undefined, { toTag: `s${tags++}` }));
      if (tx.state === 'completed') counts.inState++;
    },
  });
  await stack.start();
  const client = new MemoryTransport({ network, ...CLIENT });
  await client.start({
    receive(data) {
      counts.responses++;
      if (data instanceof Uint8Array) counts.responseBytes = data.length;
    },
    connectionClosed() {},
    error() {},
  });
  return {
    clock,
    stack,
    client,
    counts,
    async stop() {
      await client.stop();
      await stack.stop();
    },
  };
}

/** Sends `count` requests to the rig and delivers them (and the responses) at virtual time 0. */
function fill(rig: ServerRig, c: RetentionCase, count: number, first: number): void {
  for (let i = 0; i < count; i++) {
    void rig.client.send(rawRequest(c.method, first + i), SERVER);
    if (i % 256 === 255) rig.clock.advance(0);
  }
  rig.clock.advance(0);
}

/** Lets pending promise callbacks (sends resolved, catch handlers) run. */
function settleTasks(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

async function retention(c: RetentionCase, count: number): Promise<Retention> {
  // A small run first so everything on the path is compiled and allocated once.
  const warm = await serverRig(c);
  fill(warm, c, 500, 0);
  await settleTasks();
  await warm.stop();

  const rig = await serverRig(c);
  await settleTasks();
  collect();
  const before = heldHeapBytes();
  fill(rig, c, count, 1_000_000);
  await settleTasks();
  collect();
  const after = heldHeapBytes();
  const live = rig.stack.transactionCount.server;
  const timers = rig.clock.pending;
  const movedClock = rig.clock.now() !== 0;
  await rig.stop();
  return {
    label: c.label,
    count,
    perTx: canCollect() ? (after - before) / count : undefined,
    requestBytes: rawRequest(c.method, 1_000_000).length,
    responseBytes: rig.counts.responseBytes,
    live,
    inState: rig.counts.inState,
    state: movedClock ? 'clock moved!' : 'completed',
    timers,
    expectedTimers: count * c.timersPerTx,
    responses: rig.counts.responses,
  };
}

// --- the section --------------------------------------------------------------------

async function runTransactions(config: BenchConfig): Promise<void> {
  const print = (line = ''): void => console.log(line);
  print(
    `two SipStacks in one process on MemoryNetwork/MemoryTransport (UDP semantics, no faults), ` +
      `system clock, default timers (T1 ${DEFAULT_TIMERS.t1} ms); closed loop of ${WINDOW} outstanding`,
  );

  const contenders: Contender[] = [optionsContender(), inviteContender(), networkContender()];
  const progress = process.stderr.isTTY
    ? (round: number, total: number) => process.stderr.write(`\r  round ${round}/${total}`)
    : undefined;
  const results = await interleavedRoundsAsync(contenders, config, progress);
  if (progress !== undefined) process.stderr.write('\r\x1b[K');

  const baseIndex = contenders.findIndex((c) => c.unit === 'round trip');
  const baseRate = (round: number): number => results[baseIndex]?.rates[round] ?? Number.NaN;
  const throughputColumns: Column[] = [
    { title: 'contender', align: 'left' },
    { title: 'unit', align: 'left' },
    { title: 'datagrams', align: 'right' },
    { title: 'units/s', align: 'right' },
    { title: 'min..max', align: 'right' },
    { title: 'x network only', align: 'right' },
    { title: 'failed', align: 'right' },
  ];
  const throughputRows = contenders.map((c, i) => {
    const rates = (results[i] as { rates: number[] }).rates;
    return [
      c.name,
      c.unit,
      c.datagrams,
      formatRate(median(rates)),
      `${formatRateShort(Math.min(...rates))}..${formatRateShort(Math.max(...rates))}`,
      i === baseIndex ? '1.00x' : formatRatio(median(perRoundRatios(rates, baseRate))),
      String(c.tally.failed + c.tally.stalled),
    ];
  });
  print();
  print(formatTable(throughputColumns, throughputRows));

  // Retained heap, after timing.
  const count = Math.min(config.retainCount, RETAIN_MAX);
  const retained: Retention[] = [];
  for (const c of RETENTION_CASES) retained.push(await retention(c, count));
  const target = `< ${formatBytes(TARGET_BYTES)} (6 KB)`;
  const heapColumns: Column[] = [
    { title: 'server transaction in Completed', align: 'left' },
    { title: 'request B', align: 'right' },
    { title: 'response B', align: 'right' },
    { title: 'retained B/tx', align: 'right' },
    { title: 'target', align: 'left' },
    { title: 'verdict', align: 'left' },
  ];
  const heapRows = retained.map((r) => [
    r.label,
    formatBytes(r.requestBytes),
    formatBytes(r.responseBytes),
    formatBytes(r.perTx),
    target,
    r.perTx === undefined ? 'not measured' : r.perTx < TARGET_BYTES ? 'ok' : 'OVER',
  ]);
  print();
  print(`retained heap per live server transaction, ${count.toLocaleString('en-US')} alive`);
  print(formatTable(heapColumns, heapRows));

  // Notes and checks.
  print();
  const notes: string[] = [];
  for (const c of contenders) {
    const t = c.tally;
    if (t.failed > 0 || t.stalled > 0) {
      notes.push(
        `WARNING ${c.name}: ${t.failed} failed, ${t.stalled} left unfinished` +
          (t.firstError !== undefined ? ` (first: ${t.firstError})` : ''),
      );
    }
    if (c.unit === 'call' && t.acks < t.calls) {
      notes.push(`WARNING ${c.name}: ${t.acks} ACKs reached the server for ${t.calls} calls`);
    }
  }
  const invite = contenders.find((c) => c.unit === 'call');
  if (invite !== undefined && invite.tally.calls > 0 && invite.tally.acks >= invite.tally.calls) {
    notes.push(
      `${invite.name}: all ${invite.tally.calls.toLocaleString('en-US')} 2xx were ACKed ` +
        '(ACK built from the INVITE and the 2xx, new branch, sent with stack.sendRequest)',
    );
  }
  notes.push(
    `units/s is the median over ${config.rounds} interleaved rounds of ${config.sliceMs} ms ` +
      '(min..max across them): units completed until the slice ends, divided by the time taken; ' +
      'both stacks run in this one thread, so the figure covers the client and the server side',
  );
  notes.push(
    'a call completes when the 2xx reaches the client TU; its ACK is sent and delivered ' +
      'but not waited for. OPTIONS and INVITE carry Contact and Allow, INVITE and 200 an SDP body',
  );
  notes.push(
    'every slice starts a fresh pair of stacks and stops it afterwards, so transactions ' +
      'waiting in Completed/Accepted (Timers J, K, L, M of 32 s and 5 s) do not pile up ' +
      'from slice to slice; within a slice they stay live, as on a real server',
  );
  notes.push(
    'MemoryNetwork delivers each datagram with clock.setTimeout(fn, 0): with the system clock ' +
      'that is one macrotask (Node rounds 0 to 1 ms) and one copy per datagram. That cost belongs to ' +
      'the in-memory transport, and "memory network only" measures it alone: the same loop ' +
      'with a fixed datagram out and one back and no stack (its ceiling is also set by the ' +
      `${WINDOW}-deep window over ~1 ms per hop)`,
  );
  for (const r of retained) {
    const checks: string[] = [];
    if (r.live !== r.count) checks.push(`${r.live} transactions alive, want ${r.count}`);
    if (r.inState !== r.count) checks.push(`${r.inState} entered Completed, want ${r.count}`);
    if (r.responses !== r.count) checks.push(`${r.responses} responses sent, want ${r.count}`);
    if (r.timers !== r.expectedTimers)
      checks.push(`${r.timers} timers pending, want ${r.expectedTimers}`);
    if (r.state !== 'completed') checks.push(r.state);
    if (checks.length > 0) notes.push(`WARNING ${r.label}: ${checks.join('; ')}`);
  }
  const timerText = RETENTION_CASES.map((c) => `${c.timerNames} for ${c.method}`).join(', ');
  notes.push(
    canCollect()
      ? `retained B/tx: a server stack on a VirtualClock that never moves (so no timer fires: ` +
          `${timerText}, all pending) receives ${count.toLocaleString('en-US')} requests from a bare ` +
          'MemoryTransport; its TU answers each at once, leaving the transaction in Completed with ' +
          'its last response. Growth of heapUsed + arrayBuffers across the fill, after a full gc ' +
          'on both sides, divided by the count; nothing is subtracted, so it includes the received ' +
          'request (bytes and parsed), the response (object and bytes), the timers and the ' +
          'transaction and merge table entries'
      : 'retained B/tx: not measured, run node with --expose-gc',
  );
  notes.push(
    `target: under ${formatBytes(TARGET_BYTES)} B (6 KB) for the INVITE server transaction ` +
      'holding its last response; the non-INVITE row is shown against the same figure',
  );
  for (const n of notes) print(`  * ${n}`);
}

export const transactionsSection: Section = {
  name: 'transactions',
  title: 'transactions: per second through two stacks, retained heap per server transaction',
  async run(config) {
    console.log(heading(this.title));
    await runTransactions(config);
  },
};
