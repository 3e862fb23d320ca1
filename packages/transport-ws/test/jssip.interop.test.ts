import { createResponse, type SipRequest } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import JsSIP from 'jssip';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { WsTransport } from '../src/index.ts';

type UA = InstanceType<typeof JsSIP.UA>;
type Outcome = { ok: boolean; detail: string };

const WAIT_MS = 5000;
const stacks: SipStack[] = [];
const agents: UA[] = [];
const hadWebSocket = Object.hasOwn(globalThis, 'WebSocket');
const previousWebSocket = (globalThis as { WebSocket?: unknown }).WebSocket;

beforeEach(() => {
  // JsSIP.WebSocketInterface opens `new WebSocket(url, 'sip')` on the global, as in a browser.
  (globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;
});

afterEach(async () => {
  for (const ua of agents.splice(0)) ua.stop();
  await new Promise((r) => setTimeout(r, 50));
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  if (hadWebSocket) (globalThis as { WebSocket?: unknown }).WebSocket = previousWebSocket;
  else delete (globalThis as { WebSocket?: unknown }).WebSocket;
});

/** A registrar and message sink: REGISTER, MESSAGE and OPTIONS get 200. */
async function responder(): Promise<{ port: number; seen: SipRequest[] }> {
  const stack = new SipStack();
  const transport = new WsTransport({ address: '127.0.0.1', port: 0 });
  await stack.addTransport(transport);
  const seen: SipRequest[] = [];
  stack.setTransactionUser({
    onRequest(req, tx) {
      seen.push(req);
      if (req.method === 'ACK') return;
      if (req.method === 'REGISTER') {
        const expires = req.expires ?? 600;
        const contacts = req.contacts.map((c) => {
          const echoed = c.clone();
          if (!echoed.params.has('expires')) echoed.params.set('expires', String(expires));
          return echoed.toString();
        });
        const headers: Record<string, string | string[]> = {};
        if (contacts.length > 0) headers.Contact = contacts;
        tx?.respond(createResponse(req, 200, undefined, { toTag: 'reg1', headers }));
        return;
      }
      if (req.method === 'MESSAGE' || req.method === 'OPTIONS') {
        tx?.respond(createResponse(req, 200, undefined, { toTag: 'r1' }));
        return;
      }
      tx?.respond(createResponse(req, 405, undefined, { toTag: 'r1' }));
    },
  });
  await stack.start();
  stacks.push(stack);
  return { port: transport.local.port, seen };
}

function within<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no outcome in ${WAIT_MS} ms`)), WAIT_MS);
    }),
  ]);
}

function outcome(
  send: (handlers: { succeeded: () => void; failed: (e: { cause?: string }) => void }) => void,
): Promise<Outcome> {
  return new Promise((resolve) =>
    send({
      succeeded: () => resolve({ ok: true, detail: 'succeeded' }),
      failed: (e) => resolve({ ok: false, detail: String(e.cause) }),
    }),
  );
}

describe('JsSIP over WebSocket against a sipworks responder (RFC 7118)', () => {
  it('registers, then sends MESSAGE and OPTIONS', async () => {
    const { port, seen } = await responder();
    const socket = new JsSIP.WebSocketInterface(`ws://127.0.0.1:${port}/`);
    const ua = new JsSIP.UA({
      sockets: [socket],
      uri: 'sip:alice@example.test',
      register: true,
      register_expires: 300,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 2,
    });
    agents.push(ua);
    const registered = within(
      'REGISTER',
      new Promise<void>((resolve, reject) => {
        ua.on('registered', () => resolve());
        ua.on('registrationFailed', (e: { cause?: string }) =>
          reject(new Error(`registration failed: ${e.cause}`)),
        );
      }),
    );
    ua.start();
    await registered;
    expect(ua.isRegistered()).toBe(true);
    const register = seen.find((r) => r.method === 'REGISTER');
    expect(register?.via[0]?.transport).toBe('WS');
    expect(register?.contacts[0]?.uri.params.get('transport')?.toLowerCase()).toBe('ws');

    const message = await within(
      'MESSAGE',
      outcome((eventHandlers) =>
        ua.sendMessage('sip:bob@example.test', 'hello from JsSIP', { eventHandlers }),
      ),
    );
    expect(message).toEqual({ ok: true, detail: 'succeeded' });
    const received = seen.find((r) => r.method === 'MESSAGE');
    expect(received?.bodyText).toBe('hello from JsSIP');

    const options = await within(
      'OPTIONS',
      outcome((eventHandlers) =>
        (
          ua as unknown as {
            sendOptions(target: string, body: string | null, options: object): void;
          }
        ).sendOptions('sip:bob@example.test', null, { eventHandlers }),
      ),
    );
    expect(options).toEqual({ ok: true, detail: 'succeeded' });
    expect(seen.map((r) => r.method)).toEqual(['REGISTER', 'MESSAGE', 'OPTIONS']);
  });
});
