import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpProbe } from '../src/probe.ts';
import { ServeProcess } from '../src/serve-process.ts';

const servers: ServeProcess[] = [];
const probes: UdpProbe[] = [];
let dir: string | undefined;

afterEach(async () => {
  for (const p of probes.splice(0)) await p.close();
  for (const s of servers.splice(0)) await s.stop('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function serve(db: string): Promise<ServeProcess> {
  const s = await ServeProcess.start({
    args: ['--listen', 'udp:127.0.0.1:0', '--store', `sqlite:${db}`],
  });
  servers.push(s);
  return s;
}

async function probe(): Promise<UdpProbe> {
  const p = new UdpProbe();
  await p.open();
  probes.push(p);
  return p;
}

describe('restart after SIGKILL with the SQLite store (RFC 3261 §10.3: a 200 to REGISTER means the binding is kept)', () => {
  it('every binding acknowledged before the kill is there after the restart', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sipworks-restart-'));
    const db = path.join(dir, 'bindings.db');
    const first = await serve(db);
    const target = first.listener('udp');
    const acked = new Set<number>();
    let next = 0;
    let killed = false;
    // Eight clients register new users back to back; the server is killed mid-stream,
    // with REGISTERs in flight, once enough were acknowledged.
    const worker = async (): Promise<void> => {
      const p = await probe();
      while (!killed && next < 2000) {
        const n = next++;
        const aor = `sip:user${n}@127.0.0.1`;
        try {
          const r = await p.request(
            'REGISTER',
            'sip:127.0.0.1',
            target,
            {
              from: aor,
              to: aor,
              headers: [`Contact: <sip:user${n}@127.0.0.1:${40000 + (n % 1000)}>`, 'Expires: 3600'],
            },
            1000,
          );
          if (r.status === 200) acked.add(n);
        } catch {
          // No answer: the server was killed with this REGISTER in flight.
        }
      }
    };
    const workers = Array.from({ length: 8 }, () => worker());
    const deadline = Date.now() + 10_000;
    while (acked.size < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    killed = true;
    await first.stop('SIGKILL');
    const { signal } = await first.exited;
    expect(signal).toBe('SIGKILL');
    await Promise.all(workers);
    expect(acked.size).toBeGreaterThanOrEqual(300);

    const second = await serve(db);
    const again = second.listener('udp');
    const p = await probe();
    const missing: number[] = [];
    for (const n of [...acked].sort((a, b) => a - b)) {
      const aor = `sip:user${n}@127.0.0.1`;
      // §10.2.3: a REGISTER without Contact asks for the current bindings.
      const r = await p.request('REGISTER', 'sip:127.0.0.1', again, { from: aor, to: aor }, 2000);
      expect(r.status).toBe(200);
      if (!r.text.includes(`sip:user${n}@127.0.0.1:${40000 + (n % 1000)}`)) missing.push(n);
    }
    expect(missing, `bindings lost: ${missing.join(', ')}`).toEqual([]);
    console.log(
      `[restart] ${acked.size} bindings acknowledged before SIGKILL, all found after the restart`,
    );
  }, 45_000);
});
