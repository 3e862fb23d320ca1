/**
 * The twenty-line user agent and registrar of docs/getting-started.md and the README, run
 * as a reader runs them (node + tsx, as child processes) on 127.0.0.1: the UA registers
 * (RFC 3261 §10.2), the registrar stores the binding (§10.3), a MESSAGE reaches the UA
 * at its registered contact (RFC 3428), and on SIGTERM the UA unregisters and both exit 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { DialogUsageManager } from '@sipworks/dum';
import { SipStack } from '@sipworks/stack';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterEach, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');
const children: ChildProcess[] = [];
const stacks: SipStack[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

/** A running example, with what it printed so far. */
function run(file: string, args: string[]) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', `tools/examples/src/${file}`, ...args],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  const out = { text: '', err: '' };
  child.stdout?.on('data', (d: Buffer) => (out.text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out.err += d.toString()));
  /** The first match of `re` in the output, waiting up to 10 s. */
  const waitFor = async (re: RegExp): Promise<RegExpExecArray> => {
    const until = Date.now() + 10_000;
    for (;;) {
      const m = re.exec(out.text);
      if (m) return m;
      if (Date.now() > until || child.exitCode !== null)
        throw new Error(`${file}: no ${re} in:\n${out.text}\n${out.err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, out, waitFor, exited };
}

describe('getting started: the twenty-line user agent and registrar run', () => {
  it('§10.2/§10.3: the UA registers, gets a MESSAGE at its contact, unregisters on SIGTERM; both exit 0', async () => {
    const registrar = run('registrar.ts', ['127.0.0.1:0']);
    const port = (await registrar.waitFor(/listening on udp:127\.0\.0\.1:(\d+)/))[1];
    const ua = run('user-agent.ts', ['sip:alice@127.0.0.1', `sip:127.0.0.1:${port}`]);
    const contact = (await ua.waitFor(/registered sip:alice@127\.0\.0\.1 at <([^>]+)>/))[1];
    await registrar.waitFor(/registered sip:alice@127\.0\.0\.1 at sip:alice@127\.0\.0\.1:\d+/);

    const stack = new SipStack();
    stacks.push(stack);
    await stack.addTransport(new UdpTransport({ address: '127.0.0.1', port: 0 }));
    await stack.start();
    const dum = new DialogUsageManager({ stack });
    const delivered = new Promise<number>((resolve) =>
      dum.setClientPagerMessageHandler({
        onSuccess: (_h, res) => resolve(res.status),
        onFailure: (_h, res) => resolve(res.status),
      }),
    );
    dum
      .makePagerMessage(contact as string, dum.makeUserProfile({ aor: 'sip:bob@127.0.0.1' }))
      .get()
      .page('hello alice');
    expect(await delivered).toBe(200);
    await ua.waitFor(/MESSAGE from sip:bob@127\.0\.0\.1: hello alice/);

    ua.child.kill('SIGTERM');
    await registrar.waitFor(/unregistered sip:alice@127\.0\.0\.1/);
    expect(await ua.exited).toBe(0);
    registrar.child.kill('SIGTERM');
    expect(await registrar.exited).toBe(0);
  });
});
