/**
 * The transports section: SIP request/response round trips per second over
 * loopback for each transport, one process per side, and the CPU time each
 * side spends per round trip, beside the same figures for a raw socket echo.
 *
 * Client: this process. For each SIP transport a fresh SipStack with that
 * transport sends OPTIONS in a closed loop that keeps WINDOW requests
 * outstanding. Server: a child process (transport-peer.ts) with a SipStack on
 * the same transport whose TU answers 200. Both stacks are made anew for every
 * slice (outside the measured span), so transactions waiting in Completed do
 * not pile up from slice to slice; connections are opened by one unmeasured
 * request first.
 *
 * Raw rows: the same loop over a bare socket. The client sends the bytes of
 * the OPTIONS request the UDP stack put on the wire (captured from the
 * stack's diagnostics channel); the child echoes each datagram (dgram) or
 * every byte (net) back.
 *
 * CPU: process.cpuUsage() of this process, and of the child (asked over its
 * stdin, answered on its stdout), at the start and at the end of the measured
 * span, divided by the round trips completed in it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  createRequest,
  type NameAddr,
  parseHeader,
  parseUri,
  type SipRequest,
} from '@sipworks/message';
import { CHANNELS, SipStack, type TransportMessageEvent } from '@sipworks/stack';
import {
  type AsyncTimed,
  type BenchConfig,
  type Column,
  formatRate,
  formatRateShort,
  formatRatio,
  formatTable,
  heading,
  interleavedRoundsAsync,
  median,
  type Section,
} from './harness.ts';
import { makeTransport, type PeerKind, type Pki, type SipKind } from './transport-peer.ts';

/** Requests (or echoes) kept outstanding by the closed loop. */
const WINDOW = 64;
const HOST = '127.0.0.1';
/** How long a child may take to start (tsx compiles on the way). */
const READY_MS = 30_000;
/** How long a child may take to answer a command. */
const REPLY_MS = 10_000;
/** How long the unmeasured first request of a slice may take. */
const PRIME_MS = 5_000;
/** How long a slice waits for its outstanding requests after the measured span. */
const DRAIN_MS = 2_000;
/** How long a child may take to exit once asked to before it is killed. */
const EXIT_MS = 2_000;
/** How long a client stack may take to stop. */
const STOP_MS = 5_000;
const SOCKET_BUFFER = 4 << 20;
/** The unmeasured run of every contender before the rounds (BENCH_QUICK: the shorter one). */
const WARM_MS = 1_000;
const WARM_QUICK_MS = 300;

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PEER_SCRIPT = 'tools/bench/src/transport-peer.ts';

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] as string;
}

/** `promise`, or a rejection naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// --- the child process --------------------------------------------------------------

/** Every child still running, killed if this process exits without closing them. */
const live = new Set<ChildProcess>();
const killLive = (): void => {
  for (const child of live) child.kill('SIGKILL');
};

interface Waiter {
  resolve(line: string): void;
  reject(error: Error): void;
}

/** A transport-peer.ts child: one command at a time, one reply line each. */
class Peer {
  readonly kind: PeerKind;
  private readonly child: ChildProcess;
  private readonly waiters: Waiter[] = [];
  private stderrTail = '';
  private gone: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(kind: PeerKind, args: readonly string[]) {
    this.kind = kind;
    this.child = spawn(process.execPath, ['--import', 'tsx', PEER_SCRIPT, kind, ...args], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        live.delete(this.child);
        this.fail(`exited (${signal ?? `code ${code}`})`);
        resolve();
      });
    });
    this.child.once('error', (error) => {
      live.delete(this.child);
      this.fail(`could not run: ${error.message}`);
    });
    this.child.stdin?.on('error', () => {});
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-600);
    });
    const lines = readline.createInterface({ input: this.child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const waiter = this.waiters.shift();
      if (waiter === undefined) return;
      if (line.startsWith('error ')) waiter.reject(new Error(`${kind} peer: ${line.slice(6)}`));
      else waiter.resolve(line);
    });
  }

  /** Starts a child and waits for the port it listens on. */
  static async start(kind: PeerKind, args: readonly string[] = []): Promise<Peer> {
    const peer = new Peer(kind, args);
    try {
      const line = await within(peer.next(), READY_MS, `${kind} peer start`);
      peer.port = portOf(line);
      return peer;
    } catch (error) {
      await peer.close();
      throw error;
    }
  }

  port = 0;

  private fail(why: string): void {
    this.gone ??= why;
    const tail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
    const error = new Error(`${this.kind} peer ${why}${tail ? `: ${tail}` : ''}`);
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  private next(): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.gone !== undefined) reject(new Error(`${this.kind} peer ${this.gone}`));
      else this.waiters.push({ resolve, reject });
    });
  }

  private command(command: string): Promise<string> {
    const reply = this.next();
    this.child.stdin?.write(`${command}\n`);
    return within(reply, REPLY_MS, `${this.kind} peer ${command}`);
  }

  /** The child's CPU time so far (µs) and what it has answered or echoed. */
  async cpu(): Promise<{ us: number; count: number }> {
    const parts = (await this.command('cpu')).split(' ');
    if (parts[0] !== 'cpu' || parts.length !== 3) throw new Error(`bad cpu reply: ${parts}`);
    return { us: Number(parts[1]), count: Number(parts[2]) };
  }

  /** A fresh server stack (SIP kinds); resolves with its port. */
  async reset(): Promise<number> {
    this.port = portOf(await this.command('reset'));
    return this.port;
  }

  /** Asks the child to quit, kills it if it does not; bounded either way. */
  async close(): Promise<void> {
    if (this.gone === undefined) {
      this.child.stdin?.end('quit\n');
      const quit = await Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), EXIT_MS)),
      ]);
      if (!quit) {
        this.child.kill('SIGKILL');
        await Promise.race([this.exited, new Promise((r) => setTimeout(r, EXIT_MS))]);
      }
    }
    live.delete(this.child);
  }
}

function portOf(line: string): number {
  const m = /^port (\d+)$/.exec(line);
  if (m === null) throw new Error(`expected "port <n>", got ${JSON.stringify(line)}`);
  return Number(m[1]);
}

// --- the closed loop ----------------------------------------------------------------

interface Done {
  ok(): void;
  fail(error: unknown): void;
}

/** What one slice measured. */
interface SliceStats {
  units: number;
  ms: number;
  clientUs: number;
  serverUs: number;
  /** Messages the child answered or echoed between its two CPU readings. */
  served: number;
  failed: number;
  stalled: number;
  firstError: string | undefined;
}

/**
 * Keeps WINDOW units outstanding until `sliceMs` have passed; `bind` gets the
 * loop's completion callbacks and returns the function that issues one unit.
 * The span runs from the first issue to the completion that crosses the
 * deadline; CPU times are taken at both ends. Units still outstanding then
 * are waited for (not counted), up to DRAIN_MS. The child counts what it
 * served in `servedPerUnit` steps per unit (1, or the payload size for a byte
 * count).
 */
async function closedLoop(
  peer: Peer,
  sliceMs: number,
  bind: (done: Done) => () => void,
  servedPerUnit = 1,
): Promise<SliceStats> {
  const server0 = await peer.cpu();
  let serverEnd: Promise<{ us: number; count: number }> | undefined;
  const stats = await new Promise<SliceStats>((resolve) => {
    let outstanding = 0;
    let closed = false;
    let settled = false;
    let guard: ReturnType<typeof setTimeout> | undefined;
    const s: SliceStats = {
      units: 0,
      ms: 0,
      clientUs: 0,
      serverUs: 0,
      served: 0,
      failed: 0,
      stalled: 0,
      firstError: undefined,
    };
    const settle = (stalled: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      clearTimeout(fallback);
      s.stalled = stalled;
      resolve(s);
    };
    const close = (now: number): void => {
      closed = true;
      s.ms = now - start;
      const used = process.cpuUsage(client0);
      s.clientUs = used.user + used.system;
      serverEnd = peer.cpu();
      serverEnd.catch(() => {});
      guard = setTimeout(() => settle(outstanding), DRAIN_MS);
    };
    const next = (): void => {
      outstanding--;
      if (!closed) {
        const now = performance.now();
        if (now < deadline) {
          outstanding++;
          issue();
          return;
        }
        close(now);
      }
      if (outstanding === 0) settle(0);
    };
    const issue = bind({
      ok() {
        if (!closed) s.units++;
        next();
      },
      fail(error) {
        s.failed++;
        s.firstError ??= reasonOf(error);
        next();
      },
    });
    const client0 = process.cpuUsage();
    const start = performance.now();
    const deadline = start + sliceMs;
    for (let i = 0; i < WINDOW; i++) {
      outstanding++;
      issue();
    }
    // A loop in which nothing completes still ends.
    const fallback = setTimeout(() => {
      if (!closed) close(performance.now());
      if (outstanding === 0) settle(0);
    }, sliceMs + DRAIN_MS);
  });
  if (serverEnd !== undefined) {
    const server1 = await serverEnd;
    stats.serverUs = server1.us - server0.us;
    stats.served = (server1.count - server0.count) / servedPerUnit;
  }
  return stats;
}

// --- contenders ---------------------------------------------------------------------

interface Contender extends AsyncTimed {
  readonly kind: PeerKind;
  /** The raw row this one is compared with. */
  readonly reference: PeerKind | undefined;
  /** Every slice, warm-up rounds first. */
  readonly slices: SliceStats[];
  /** Why it did not run, or stopped running. */
  error: string | undefined;
  /** Not run at all: shown as a TODO row with the reason. */
  readonly todo?: boolean;
  /** Bytes per request and per response on the wire (SIP: as the stack sent and received them). */
  requestBytes: number | undefined;
  responseBytes: number | undefined;
  close(): Promise<void>;
}

function nameAddr(header: string, text: string): NameAddr {
  return parseHeader<NameAddr>(header, text)[0] as NameAddr;
}

/** Runs `slice` unless the contender has failed; a failure ends its part in the run. */
function guarded(
  c: Contender,
  run: (sliceMs: number) => Promise<SliceStats>,
): (sliceMs: number) => Promise<{ units: number; ms: number }> {
  return async (sliceMs) => {
    if (c.error === undefined) {
      try {
        const s = await run(sliceMs);
        c.slices.push(s);
        return s;
      } catch (error) {
        c.error = reasonOf(error);
      }
    }
    return { units: 0, ms: 1 };
  };
}

const SIP_LABELS: Record<SipKind, string> = {
  udp: 'UDP',
  tcp: 'TCP',
  tls: 'TLS',
  ws: 'WS',
  wss: 'WSS',
};

function sipContender(kind: SipKind, peer: Peer, pki: Pki | undefined): Contender {
  const from = nameAddr('From', `"Bench" <sip:client@${HOST}>`);
  const contact = nameAddr('Contact', `<sip:client@${HOST}>`);
  let run = 0;
  let capture = true;

  const slice = async (sliceMs: number): Promise<SliceStats> => {
    const port = await peer.reset();
    const uri = parseUri(`sip:bench@${HOST}:${port};transport=${kind}`);
    const to = nameAddr('To', `<sip:bench@${HOST}:${port}>`);
    const salt = `${run++}`;
    let seq = 0;
    const request = (): SipRequest => {
      const n = seq++;
      const f = from.clone();
      f.params.set('tag', `c${n}`);
      return createRequest({
        method: 'OPTIONS',
        uri,
        from: f,
        to,
        callId: `${n}.${salt}@bench`,
        cseq: 1,
        contact,
        headers: [['Accept', 'application/sdp']],
      });
    };

    const client = new SipStack();
    try {
      await client.addTransport(makeTransport(kind, pki));
      client.setTransactionUser({ onRequest() {} });
      await client.start();
      await prime(client, request(), capture ? c : undefined);
      capture = false;
      return await closedLoop(peer, sliceMs, (done) => {
        const handler = {
          onResponse(response: { status: number }) {
            if (response.status < 200) return;
            if (response.status === 200) done.ok();
            else done.fail(new Error(`OPTIONS answered ${response.status}`));
          },
          onError: done.fail,
        };
        return () => {
          try {
            client.sendRequest(request(), handler);
          } catch (error) {
            queueMicrotask(() => done.fail(error));
          }
        };
      });
    } finally {
      await within(client.stop(), STOP_MS, `${kind} client stack stop`).catch(() => {});
    }
  };

  const c: Contender = {
    name: SIP_LABELS[kind],
    kind,
    reference: kind === 'udp' ? 'raw-udp' : 'raw-tcp',
    slices: [],
    error: undefined,
    requestBytes: undefined,
    responseBytes: undefined,
    slice: (ms) => guarded(c, slice)(ms),
    close: () => peer.close(),
  };
  return c;
}

/**
 * One request outside the measured span: opens the connection of the stream
 * transports; with `capture`, records the sizes of the request and of the
 * response on the wire.
 */
async function prime(client: SipStack, request: SipRequest, capture?: Contender): Promise<void> {
  const seen = (message: unknown): void => {
    const e = message as TransportMessageEvent;
    if (capture === undefined) return;
    if (e.direction === 'send' && 'method' in e.message) {
      capture.requestBytes = e.bytes.length;
      if (capture.kind === 'udp') udpRequestBytes = e.bytes.slice();
    } else if (e.direction === 'receive' && 'status' in e.message) {
      capture.responseBytes = e.bytes.length;
    }
  };
  if (capture !== undefined) {
    diagnostics.subscribe(CHANNELS.send, seen);
    diagnostics.subscribe(CHANNELS.receive, seen);
  }
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        client.sendRequest(request, {
          onResponse(response) {
            if (response.status < 200) return;
            if (response.status === 200) resolve();
            else reject(new Error(`first OPTIONS answered ${response.status}`));
          },
          onError: reject,
        });
      }),
      PRIME_MS,
      'first OPTIONS',
    );
  } finally {
    if (capture !== undefined) {
      diagnostics.unsubscribe(CHANNELS.send, seen);
      diagnostics.unsubscribe(CHANNELS.receive, seen);
    }
  }
}

/** The OPTIONS request as the UDP stack sent it; the raw rows echo these bytes. */
let udpRequestBytes: Uint8Array | undefined;

/** A stand-in of the usual size, used only when the UDP row could not run. */
function fallbackPayload(): Uint8Array {
  const text = [
    `OPTIONS sip:bench@${HOST}:5060;transport=udp SIP/2.0`,
    `Via: SIP/2.0/UDP ${HOST}:5070;branch=z9hG4bK.0123456789abcdef;rport`,
    'Max-Forwards: 70',
    `To: <sip:bench@${HOST}:5060>`,
    `From: "Bench" <sip:client@${HOST}>;tag=c0`,
    'Call-ID: 0.0@bench',
    'CSeq: 1 OPTIONS',
    `Contact: <sip:client@${HOST}>`,
    'Accept: application/sdp',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return new TextEncoder().encode(text);
}

function rawUdpContender(peer: Peer): Contender {
  const socket = dgram.createSocket('udp4');
  let generation = 0;
  let payload = Buffer.alloc(0);
  let done: Done | undefined;
  let bound: Promise<void> | undefined;
  socket.on('message', (msg) => {
    if (done !== undefined && msg.length >= 4 && msg.readUInt32BE(0) === generation) done.ok();
  });
  socket.on('error', (error) => done?.fail(error));

  const slice = async (sliceMs: number): Promise<SliceStats> => {
    bound ??= new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, HOST, () => {
        socket.off('error', reject);
        socket.setRecvBufferSize(SOCKET_BUFFER);
        socket.setSendBufferSize(SOCKET_BUFFER);
        resolve();
      });
    });
    await bound;
    if (c.requestBytes === undefined) {
      payload = Buffer.from(udpRequestBytes ?? fallbackPayload());
      c.requestBytes = payload.length;
      c.responseBytes = payload.length;
    }
    // Echoes left over from an earlier slice carry an older number and are ignored.
    payload.writeUInt32BE(++generation, 0);
    try {
      return await closedLoop(peer, sliceMs, (d) => {
        done = d;
        return () => socket.send(payload, peer.port, HOST);
      });
    } finally {
      done = undefined;
    }
  };

  const c: Contender = {
    name: 'raw UDP echo',
    kind: 'raw-udp',
    reference: undefined,
    slices: [],
    error: undefined,
    requestBytes: undefined,
    responseBytes: undefined,
    slice: (ms) => guarded(c, slice)(ms),
    async close() {
      if (bound !== undefined) await new Promise<void>((r) => socket.close(() => r()));
      await peer.close();
    },
  };
  return c;
}

function rawTcpContender(peer: Peer): Contender {
  let payload = Buffer.alloc(0);

  const slice = async (sliceMs: number): Promise<SliceStats> => {
    if (c.requestBytes === undefined) {
      payload = Buffer.from(udpRequestBytes ?? fallbackPayload());
      c.requestBytes = payload.length;
      c.responseBytes = payload.length;
    }
    const size = payload.length;
    const socket = net.connect({ host: HOST, port: peer.port, noDelay: true });
    try {
      await within(
        new Promise<void>((resolve, reject) => {
          socket.once('connect', () => {
            socket.off('error', reject);
            resolve();
          });
          socket.once('error', reject);
        }),
        REPLY_MS,
        'raw TCP connect',
      );
    } catch (error) {
      socket.destroy();
      throw error;
    }
    let broken = false;
    try {
      return await closedLoop(
        peer,
        sliceMs,
        (done) => {
          let received = 0;
          let completed = 0;
          socket.on('data', (chunk: Buffer) => {
            received += chunk.length;
            const whole = Math.floor(received / size);
            while (completed < whole) {
              completed++;
              done.ok();
            }
          });
          socket.on('error', (error) => {
            broken = true;
            done.fail(error);
          });
          return () => {
            if (!broken) socket.write(payload);
          };
        },
        size,
      );
    } finally {
      socket.destroy();
    }
  };

  const c: Contender = {
    name: 'raw TCP echo',
    kind: 'raw-tcp',
    reference: undefined,
    slices: [],
    error: undefined,
    requestBytes: undefined,
    responseBytes: undefined,
    slice: (ms) => guarded(c, slice)(ms),
    close: () => peer.close(),
  };
  return c;
}

/** A row that cannot run, with the reason. */
function missing(name: string, kind: PeerKind, why: string): Contender {
  return {
    name,
    kind,
    reference: undefined,
    slices: [],
    error: why,
    todo: true,
    requestBytes: undefined,
    responseBytes: undefined,
    slice: async () => ({ units: 0, ms: 1 }),
    close: async () => {},
  };
}

// --- certificates -------------------------------------------------------------------

/** A self-signed P-256 certificate for IP:127.0.0.1 made by the openssl CLI, or why not. */
async function makePki(): Promise<{ pki: Pki; dir: string; files: string[] } | string> {
  const dir = await mkdtemp(join(os.tmpdir(), 'sipworks-bench-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${HOST}`,
    '-addext',
    `subjectAltName=IP:${HOST}`,
  ];
  try {
    await new Promise<void>((resolve, reject) => {
      execFile('openssl', args, { timeout: 15_000 }, (error) =>
        error ? reject(error) : resolve(),
      );
    });
    const pki = { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
    return { pki, dir, files: ['--cert', cert, '--key', key] };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    const code = (error as { code?: unknown }).code;
    return code === 'ENOENT'
      ? 'not run: the openssl command is not installed (it makes the test certificate)'
      : `not run: openssl could not make a certificate: ${reasonOf(error)}`;
  }
}

// --- the section --------------------------------------------------------------------

const ORDER: readonly PeerKind[] = ['raw-udp', 'udp', 'raw-tcp', 'tcp', 'tls', 'ws', 'wss'];

async function setUp(): Promise<{ contenders: Contender[]; cleanup: () => Promise<void> }> {
  const made = await makePki();
  const pki = typeof made === 'string' ? undefined : made;
  const contenders: Contender[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(contenders.map((c) => c.close().catch(() => {})));
    if (pki !== undefined) await rm(pki.dir, { recursive: true, force: true });
  };
  try {
    const started = await Promise.all(
      ORDER.map(async (kind): Promise<Contender> => {
        const secure = kind === 'tls' || kind === 'wss';
        const name = kind.startsWith('raw-')
          ? kind === 'raw-udp'
            ? 'raw UDP echo'
            : 'raw TCP echo'
          : SIP_LABELS[kind as SipKind];
        if (secure && pki === undefined) return missing(name, kind, made as string);
        let peer: Peer;
        try {
          peer = await Peer.start(kind, secure ? (pki?.files ?? []) : []);
        } catch (error) {
          return missing(name, kind, `not run: ${reasonOf(error)}`);
        }
        if (kind === 'raw-udp') return rawUdpContender(peer);
        if (kind === 'raw-tcp') return rawTcpContender(peer);
        return sipContender(kind as SipKind, peer, pki?.pki);
      }),
    );
    contenders.push(...started);
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { contenders, cleanup };
}

function us(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value >= 100 ? Math.round(value).toString() : value.toFixed(1);
}

async function runTransports(config: BenchConfig): Promise<void> {
  const print = (line = ''): void => console.log(line);
  print(
    `OPTIONS -> 200 over 127.0.0.1, one process per side: this process is the client (a SipStack), ` +
      `a child process (transport-peer.ts) the server; closed loop of ${WINDOW} outstanding`,
  );

  process.on('exit', killLive);
  const { contenders, cleanup } = await setUp();
  try {
    // Each child runs only its own transport while this process runs them all: a longer
    // unmeasured run of every contender first lets the children's code be compiled too.
    // UDP goes first, so the raw rows echo the bytes it sent.
    const warm = config.quick ? WARM_QUICK_MS : WARM_MS;
    const first = [...contenders].sort(
      (a, b) => Number(b.kind === 'udp') - Number(a.kind === 'udp'),
    );
    for (const c of first) {
      await c.slice(warm);
      c.slices.length = 0;
    }

    const progress = process.stderr.isTTY
      ? (round: number, total: number) => process.stderr.write(`\r  round ${round}/${total}`)
      : undefined;
    const results = await interleavedRoundsAsync(contenders, config, progress);
    if (progress !== undefined) process.stderr.write('\r\x1b[K');
    report(config, contenders, results);
  } finally {
    await cleanup();
    process.off('exit', killLive);
  }
}

interface Derived {
  readonly rates: number[];
  readonly client: number[];
  readonly server: number[];
}

function report(
  config: BenchConfig,
  contenders: readonly Contender[],
  results: readonly { rates: number[] }[],
): void {
  const print = (line = ''): void => console.log(line);
  const derived = new Map<PeerKind, Derived>();
  contenders.forEach((c, i) => {
    const measured = c.slices.slice(config.warmupRounds);
    derived.set(c.kind, {
      rates: c.error === undefined ? (results[i]?.rates ?? []) : [],
      client: measured.map((s) => s.clientUs / s.units),
      server: measured.map((s) => s.serverUs / (s.served > 0 ? s.served : s.units)),
    });
  });
  const ratio = (mine: readonly number[], ref: readonly number[] | undefined): string => {
    if (ref === undefined || mine.length === 0 || ref.length !== mine.length) return '';
    return formatRatio(median(mine.map((v, round) => v / (ref[round] as number))));
  };

  const columns: Column[] = [
    { title: 'transport', align: 'left' },
    { title: 'bytes req/resp', align: 'right' },
    { title: 'round trips/s', align: 'right' },
    { title: 'min..max', align: 'right' },
    { title: 'client µs/rt', align: 'right' },
    { title: 'server µs/rt', align: 'right' },
    { title: 'client x raw', align: 'right' },
    { title: 'server x raw', align: 'right' },
  ];
  const rows = contenders.map((c) => {
    const bytes =
      c.requestBytes === undefined ? '-' : `${c.requestBytes}/${c.responseBytes ?? '-'}`;
    const d = derived.get(c.kind) as Derived;
    if (c.error !== undefined && d.rates.length === 0) {
      return [c.name, bytes, c.todo === true ? 'TODO' : 'FAILED', 'see below'];
    }
    const ref = c.reference === undefined ? undefined : derived.get(c.reference);
    return [
      c.name,
      bytes,
      formatRate(median(d.rates)),
      `${formatRateShort(Math.min(...d.rates))}..${formatRateShort(Math.max(...d.rates))}`,
      us(median(d.client)),
      us(median(d.server)),
      c.reference === undefined ? '' : ratio(d.client, ref?.client),
      c.reference === undefined ? '' : ratio(d.server, ref?.server),
    ];
  });
  print();
  print(formatTable(columns, rows));

  print();
  const notes: string[] = [];
  for (const c of contenders) {
    const failed = c.slices.reduce((n, s) => n + s.failed, 0);
    const stalled = c.slices.reduce((n, s) => n + s.stalled, 0);
    const firstError = c.slices.find((s) => s.firstError !== undefined)?.firstError;
    if (failed > 0 || stalled > 0) {
      notes.push(
        `WARNING ${c.name}: ${failed} failed, ${stalled} never answered` +
          (firstError !== undefined ? ` (first: ${firstError})` : ''),
      );
    }
    if (c.todo === true) notes.push(`TODO ${c.name}: ${c.error}`);
    else if (c.error !== undefined) {
      notes.push(`FAILED ${c.name}: stopped after ${c.slices.length} slices: ${c.error}`);
    }
    const short = c.slices.filter((s) => s.served < s.units - WINDOW).length;
    if (short > 0) {
      notes.push(
        `WARNING ${c.name}: in ${short} slices the child served fewer messages than completed`,
      );
    }
  }
  notes.push(
    `round trips/s: median over ${config.rounds} interleaved rounds of ${config.sliceMs} ms ` +
      '(min..max across them); requests completed from the first one sent to the completion ' +
      'that ends the span, divided by its length. The first request of each slice (which opens ' +
      'the connection) and the requests still outstanding at the end are not counted',
  );
  notes.push(
    'client/server µs/rt: CPU time (user + system, process.cpuUsage(), all threads) each ' +
      'process used over the span, median over the rounds. Client: divided by the round trips ' +
      'completed in the span. Server: read by the child at the start and when the "cpu" ' +
      'command reaches it on stdin at the end of the span, divided by the requests it ' +
      'answered (messages it echoed) between the two readings',
  );
  notes.push(
    'x raw: per-round ratio of CPU per round trip to the raw echo of the same round ' +
      '(UDP to raw UDP; TCP, TLS, WS and WSS to raw TCP), median over the rounds. The raw ' +
      'rows send the bytes of the OPTIONS request the UDP stack sent and get them back ' +
      'unchanged (dgram: one datagram each way; net: the client writes each message on its ' +
      'own, the child writes back each chunk it reads, no framing). Over TCP a read carries ' +
      'many of the outstanding messages, so the raw echo spreads its system calls over them; ' +
      'the stream transports read the same way but write each SIP message on its own',
  );
  notes.push(
    'bytes req/resp: the SIP message as the client stack sent and received it, before ' +
      'TLS records or WebSocket frames; every slice uses a fresh client and server stack ' +
      '(so Timer J and K transactions do not pile up), with default timers',
  );
  for (const n of notes) print(`  * ${n}`);
}

export const transportsSection: Section = {
  name: 'transports',
  title: 'transports: round trips per second over loopback, CPU per round trip per side',
  async run(config) {
    console.log(heading(this.title));
    await runTransports(config);
  },
};
