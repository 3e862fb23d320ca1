/**
 * The server side of the transports section, run in a process of its own:
 *
 *   node --import tsx tools/bench/src/transport-peer.ts <kind> [--cert file --key file]
 *
 * kinds: udp, tcp, tls, ws, wss (a SipStack whose TU answers every request
 * with 200), raw-udp (echoes each datagram), raw-tcp (echoes every byte).
 * tls and wss need --cert and --key (PEM files).
 *
 * It listens on 127.0.0.1, port 0, and prints `port <n>` on stdout when ready.
 * Then it reads commands from stdin, one a line, and answers each with a line:
 *
 *   cpu    -> `cpu <µs> <count>`: the process's CPU time so far (user + system,
 *             process.cpuUsage()) and how many requests it has answered (or
 *             datagrams / bytes it has echoed)
 *   reset  -> `port <n>`: the SIP kinds stop their stack and start a fresh one
 *             (transactions still in Completed are dropped); the raw kinds keep
 *             their socket
 *   quit   -> exits; so does the end of stdin (the bench process went away)
 *
 * A failure is printed as `error <message>` and ends the process.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { createResponse } from '@sipworks/message';
import { SipStack, type Transport } from '@sipworks/stack';
import { TcpTransport } from '@sipworks/transport-tcp';
import { TlsTransport } from '@sipworks/transport-tls';
import { UdpTransport } from '@sipworks/transport-udp';
import { WsTransport } from '@sipworks/transport-ws';

const HOST = '127.0.0.1';
const SOCKET_BUFFER = 4 << 20;

export const SIP_KINDS = ['udp', 'tcp', 'tls', 'ws', 'wss'] as const;
export const RAW_KINDS = ['raw-udp', 'raw-tcp'] as const;
export type SipKind = (typeof SIP_KINDS)[number];
export type RawKind = (typeof RAW_KINDS)[number];
export type PeerKind = SipKind | RawKind;

export interface Pki {
  readonly cert: string;
  readonly key: string;
}

/** A transport of `kind` on 127.0.0.1, port 0; the bench's client stacks use it too. */
export function makeTransport(kind: SipKind, pki: Pki | undefined): Transport {
  const base = { address: HOST, port: 0 };
  switch (kind) {
    case 'udp':
      return new UdpTransport(base);
    case 'tcp':
      return new TcpTransport(base);
    case 'tls':
      if (!pki) throw new Error('tls needs --cert and --key');
      return new TlsTransport({ ...base, cert: pki.cert, key: pki.key, ca: pki.cert });
    case 'ws':
      return new WsTransport(base);
    case 'wss':
      if (!pki) throw new Error('wss needs --cert and --key');
      return new WsTransport({ ...base, tls: { cert: pki.cert, key: pki.key, ca: pki.cert } });
  }
}

interface Server {
  /** Port to send to. */
  readonly port: number;
  /** Requests answered, datagrams echoed or bytes echoed. */
  count(): number;
  reset(): Promise<number>;
  stop(): Promise<void>;
}

async function sipServer(kind: SipKind, pki: Pki | undefined): Promise<Server> {
  let answered = 0;
  const start = async (): Promise<{ stack: SipStack; port: number }> => {
    const stack = new SipStack();
    const transport = makeTransport(kind, pki);
    await stack.addTransport(transport);
    let tags = 0;
    stack.setTransactionUser({
      onRequest(request, tx) {
        if (tx === undefined) return;
        tx.respond(createResponse(request, 200, undefined, { toTag: `p${tags++}` }));
        answered++;
      },
    });
    await stack.start();
    return { stack, port: transport.local.port };
  };
  let current = await start();
  return {
    get port() {
      return current.port;
    },
    count: () => answered,
    async reset() {
      await current.stack.stop();
      current = await start();
      return current.port;
    },
    stop: () => current.stack.stop(),
  };
}

async function rawUdpServer(): Promise<Server> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, HOST, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.setRecvBufferSize(SOCKET_BUFFER);
  socket.setSendBufferSize(SOCKET_BUFFER);
  let echoed = 0;
  socket.on('message', (msg, rinfo) => {
    echoed++;
    socket.send(msg, rinfo.port, rinfo.address);
  });
  const port = socket.address().port;
  return {
    port,
    count: () => echoed,
    reset: async () => port,
    stop: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

async function rawTcpServer(): Promise<Server> {
  let echoed = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('data', (chunk) => {
      echoed += chunk.length;
      socket.write(chunk);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    count: () => echoed,
    reset: async () => port,
    stop() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function reply(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const [kind, ...rest] = process.argv.slice(2);
  const certFile = option(rest, '--cert');
  const keyFile = option(rest, '--key');
  const pki =
    certFile !== undefined && keyFile !== undefined
      ? { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') }
      : undefined;

  let server: Server;
  if (kind === 'raw-udp') server = await rawUdpServer();
  else if (kind === 'raw-tcp') server = await rawTcpServer();
  else if ((SIP_KINDS as readonly string[]).includes(kind ?? '')) {
    server = await sipServer(kind as SipKind, pki);
  } else {
    throw new Error(`unknown kind ${JSON.stringify(kind)}; kinds: ${[...SIP_KINDS, ...RAW_KINDS]}`);
  }

  let stopping = false;
  const finish = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const forced = setTimeout(() => process.exit(0), 2_000);
    forced.unref();
    await server.stop();
    process.exit(0);
  };

  // Commands run one at a time, in order, so a reply always answers the oldest command.
  let queue = Promise.resolve();
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    queue = queue.then(async () => {
      if (command === 'cpu') {
        const u = process.cpuUsage();
        reply(`cpu ${u.user + u.system} ${server.count()}`);
      } else if (command === 'reset') {
        reply(`port ${await server.reset()}`);
      } else if (command === 'quit') {
        await finish();
      } else if (command !== '') {
        reply(`error unknown command ${JSON.stringify(command)}`);
      }
    });
    queue = queue.catch(fail);
  });
  lines.on('close', () => {
    void queue.then(finish);
  });

  reply(`port ${server.port}`);
}

function fail(error: unknown): void {
  const text = error instanceof Error ? error.message : String(error);
  reply(`error ${text.split('\n')[0]}`);
  process.exit(1);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(fail);
}
