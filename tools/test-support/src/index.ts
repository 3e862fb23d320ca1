/**
 * Helpers shared by the tests that start real peers (SIPp, Kamailio, redis-server...).
 *
 * Such a suite skips, with a printed reason, when its peer is not installed on a
 * developer's machine, and fails instead when `CI=true`: in CI a missing peer is a broken
 * setup (`.ci/run` installs every peer), never a reason to report green.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Whether the tests run in CI (`CI=true`), where a missing peer fails its suite. */
export const inCi = process.env.CI === 'true';

/** Whether a peer can be used, and why not when it cannot. */
export interface PeerRequirement {
  /** The peer's executable, when found. */
  binary: string | undefined;
  available: boolean;
  /** Why the peer cannot be used, when it cannot. */
  reason: string | undefined;
  /** Pass to `describe.skipIf`: true only when the peer is missing outside CI. */
  skip: boolean;
  /** Call in `beforeAll`: throws, naming the missing peer and its package, when it is missing (in CI). */
  assertAvailable(): void;
}

export interface PeerRequirementOptions {
  /** What the peer is called in messages (`redis-server`). */
  peer: string;
  /** The executable: an absolute path, or a name looked up on `PATH`. */
  binary: string;
  /** How to install it (`apt-get install redis-server`). */
  install: string;
  /** The suite, for the skip message (`store-redis`). */
  suite: string;
}

/**
 * Find a peer's executable; print why its suite is skipped when it is missing outside
 * CI. The suite uses `describe.skipIf(req.skip)` and calls `req.assertAvailable()` in its
 * `beforeAll`, so that in CI the missing peer fails the suite.
 */
export function peerRequirement(options: PeerRequirementOptions): PeerRequirement {
  const binary = findExecutable(options.binary);
  const reason = binary === undefined ? `${options.binary} not found` : undefined;
  const available = binary !== undefined;
  if (!available && !inCi)
    console.warn(
      `[${options.suite}] ${options.peer} tests skipped: ${reason} (${options.install}); ` +
        'with CI=true this suite fails instead',
    );
  return {
    binary,
    available,
    reason,
    skip: !available && !inCi,
    assertAvailable() {
      if (!available)
        throw new Error(
          `${options.peer} is required when CI=true, but ${reason} (${options.install})`,
        );
    },
  };
}

/** An executable file: `name` itself when it is a path, else the first match on `PATH`. */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes(path.sep)
    ? [name]
    : (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // Not there, or not executable: try the next one.
    }
  }
  return undefined;
}

/**
 * A port free for both UDP and TCP on `address`: bind a UDP socket to port 0, listen on
 * the same port over TCP, then close both. `span` more ports above it (`port + 2`...)
 * must be free over UDP too (SIPp's media ports are `-mp` and `-mp + 2`).
 */
export async function freePort(address = '127.0.0.1', span = 0): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const held: Array<() => Promise<void>> = [];
    try {
      const udp = await bindUdp(address, 0);
      held.push(() => new Promise((r) => udp.close(() => r())));
      const port = udp.address().port;
      const tcp = await listenTcp(address, port);
      held.push(() => new Promise((r) => tcp.close(() => r())));
      for (let i = 1; i <= span; i++) {
        const extra = await bindUdp(address, port + i);
        held.push(() => new Promise((r) => extra.close(() => r())));
      }
      return port;
    } catch {
      // Taken in one of the protocols; try another.
    } finally {
      await Promise.all(held.map((close) => close()));
    }
  }
  throw new Error('no free port found');
}

function bindUdp(address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    s.once('error', (e) => {
      s.close();
      reject(e);
    });
    s.bind(port, address, () => resolve(s));
  });
}

function listenTcp(address: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, address, () => resolve(s));
  });
}

export { RedisServerProcess, redisServerRequirement } from './redis-server.ts';
