import type { SipResponse } from '@sipworks/message';
import { MemoryNetwork, ScriptedPeer, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientPublication,
  type ClientPublicationHandler,
  type Handle,
  InMemoryPublicationStore,
  type PublicationStore,
  type ServerPublication,
} from '../src/index.ts';
import { node, until } from './support.ts';

const PIDF = 'application/pidf+xml';
function pidf(note: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:alice@127.0.0.1">\n' +
    `  <tuple id="a1"><status><basic>open</basic></status><note>${note}</note></tuple>\n` +
    '</presence>\n'
  );
}

function client() {
  const out = {
    success: [] as SipResponse[],
    removed: [] as SipResponse[],
    failed: [] as SipResponse[],
  };
  const handler: ClientPublicationHandler = {
    onSuccess: (_h, r) => out.success.push(r),
    onRemove: (_h, r) => out.removed.push(r),
    onFailure: (_h, r) => out.failed.push(r),
  };
  return { out, handler };
}

/** alice (5061) publishes presence to a state agent DUM (5062). */
async function twoDums() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 31 });
  const alice = await node(network, clock, 5061, 'alice');
  const agent = await node(network, clock, 5062, 'agent');
  const ops: { op: string; etag: string; handle: Handle<ServerPublication> }[] = [];
  agent.dum.addServerPublicationHandler('presence', {
    onInitial: (handle, etag) => ops.push({ op: 'initial', etag, handle }),
    onRefresh: (handle, etag) => ops.push({ op: 'refresh', etag, handle }),
    onUpdate: (handle, etag) => ops.push({ op: 'update', etag, handle }),
    onRemoved: (handle, etag) => ops.push({ op: 'removed', etag, handle }),
    onExpired: (handle, etag) => ops.push({ op: 'expired', etag, handle }),
  });
  return { clock, network, alice, agent, ops };
}

describe('publications between two DUMs (RFC 3903)', () => {
  it('§4.1, §4.3, §4.4, §4.5: publish, refresh before expiry, modify, remove', async () => {
    const { clock, alice, agent, ops } = await twoDums();
    const { out, handler } = client();
    alice.dum.addClientPublicationHandler('presence', handler);
    const req = alice.dum.makePublication(
      'sip:alice@127.0.0.1:5062',
      'presence',
      alice.profile,
      pidf('here'),
      PIDF,
      { expires: 120 },
    );
    expect(req.method).toBe('PUBLISH');
    expect(req.header('Event')).toBe('presence');
    expect(req.expires).toBe(120);
    expect(req.has('SIP-If-Match')).toBe(false);
    const h = alice.dum.send<ClientPublication>(req);
    await until(clock, () => out.success.length === 1);
    const etag1 = h.get().etag as string;
    expect(etag1).toMatch(/^[0-9a-f]+$/);
    expect(out.success[0]?.header('SIP-ETag')).toBe(etag1);
    expect(h.get().expires).toBe(120);
    expect(ops.map((o) => o.op)).toEqual(['initial']);
    expect(
      await agent.dum.publicationStore.find('sip:alice@127.0.0.1:5062', 'presence'),
    ).toHaveLength(1);

    // §4.3: refreshed after 108 s (0.9 * 120) with SIP-If-Match and no body.
    await until(clock, () => out.success.length === 2, { steps: 2000, stepMs: 100 });
    expect(clock.now()).toBeGreaterThanOrEqual(108_000);
    expect(ops[1]?.op).toBe('refresh');
    expect(ops[1]?.etag).toBe(etag1);
    expect(h.get().request.body.length).toBe(0);
    const etag2 = h.get().etag as string;
    expect(etag2).not.toBe(etag1);

    // §4.4: modify.
    h.get().update(pidf('away'));
    await until(clock, () => out.success.length === 3);
    expect(ops[2]?.op).toBe('update');
    expect(ops[2]?.etag).toBe(etag2);
    expect(h.get().request.header('SIP-If-Match')).toBe(etag2);
    const stored = await agent.dum.publicationStore.find('sip:alice@127.0.0.1:5062', 'presence');
    expect(stored).toHaveLength(1);
    expect(new TextDecoder().decode(stored[0]?.body)).toContain('away');

    // §4.5: remove.
    h.get().end();
    await until(clock, () => out.removed.length === 1);
    expect(ops[3]?.op).toBe('removed');
    expect(h.isValid()).toBe(false);
    expect(await agent.dum.publicationStore.find('sip:alice@127.0.0.1:5062', 'presence')).toEqual(
      [],
    );
  });

  it('§6: the state agent expires a publication that is not refreshed (onExpired)', async () => {
    const { clock, network, agent, ops } = await twoDums();
    // A publisher that never refreshes.
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    const body = pidf('x');
    await peer.send(
      'PUBLISH sip:alice@127.0.0.1:5062 SIP/2.0\r\n' +
        'Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKpub1\r\n' +
        'Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=p1\r\nTo: <sip:alice@127.0.0.1>\r\n' +
        'Call-ID: pub-1\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 60\r\n' +
        `Content-Type: ${PIDF}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      { address: '127.0.0.1', port: 5062 },
    );
    const ok = await peer.expectResponse(200, 'PUBLISH');
    expect(ok.message.header('SIP-ETag')).toBe(ops[0]?.handle.get().etag);
    expect(ok.message.expires).toBe(60);
    await until(clock, () => ops.some((o) => o.op === 'expired'), { steps: 200, stepMs: 500 });
    expect(clock.now()).toBeGreaterThanOrEqual(60_000);
    expect(await agent.dum.publicationStore.find('sip:alice@127.0.0.1:5062', 'presence')).toEqual(
      [],
    );
    expect(ops[0]?.handle.isValid()).toBe(false);
  });

  it('§6 step 2: an initial PUBLISH without a body gets 400; step 5: an unknown SIP-If-Match gets 412', async () => {
    const { clock, alice } = await twoDums();
    const { out, handler } = client();
    alice.dum.addClientPublicationHandler('presence', handler);
    const empty = alice.dum.makePublication(
      'sip:alice@127.0.0.1:5062',
      'presence',
      alice.profile,
      '',
      PIDF,
    );
    empty.removeHeader('Content-Type');
    alice.dum.send(empty);
    await until(clock, () => out.failed.length === 1);
    expect(out.failed[0]?.status).toBe(400);

    const stale = alice.dum.makePublication(
      'sip:alice@127.0.0.1:5062',
      'presence',
      alice.profile,
      pidf('x'),
      PIDF,
    );
    stale.setHeader('SIP-If-Match', 'nosuchetag');
    // The client recovers from the 412 with an initial PUBLISH (§4.3); the agent accepts it.
    const h = alice.dum.send<ClientPublication>(stale);
    await until(clock, () => out.success.length === 1);
    expect(h.get().request.has('SIP-If-Match')).toBe(false);
  });

  it('§6 step 4: an event nobody handles gets 489', async () => {
    const { clock, alice } = await twoDums();
    const { out, handler } = client();
    alice.dum.addClientPublicationHandler('dialog', handler);
    alice.dum.send(
      alice.dum.makePublication(
        'sip:alice@127.0.0.1:5062',
        'dialog',
        alice.profile,
        'x',
        'text/plain',
      ),
    );
    await until(clock, () => out.failed.length === 1);
    expect(out.failed[0]?.status).toBe(489);
  });
});

describe('a publication against a scripted state agent (RFC 3903)', () => {
  it('§4.3: a 412 to the refresh makes the client publish again from scratch with the body', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 33 });
    const alice = await node(network, clock, 5080, 'alice');
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    const { out, handler } = client();
    alice.dum.addClientPublicationHandler('presence', handler);
    const h = alice.dum.send<ClientPublication>(
      alice.dum.makePublication(
        'sip:alice@127.0.0.1:5090',
        'presence',
        alice.profile,
        pidf('a'),
        PIDF,
        {
          expires: 60,
        },
      ),
    );
    const p1 = await peer.expectRequest('PUBLISH');
    expect(p1.message.body.length).toBeGreaterThan(0);
    await peer.respond(p1, 200, {
      headers: [
        ['SIP-ETag', 'e1'],
        ['Expires', '60'],
      ],
    });
    const p2 = await peer.expectRequest('PUBLISH', { withinMs: 60_000, stepMs: 100 });
    expect(p2.message.header('SIP-If-Match')).toBe('e1');
    expect(p2.message.body.length).toBe(0);
    expect(p2.message.cseq.seq).toBe(p1.message.cseq.seq + 1);
    await peer.respond(p2, 412);
    const p3 = await peer.expectRequest('PUBLISH');
    expect(p3.message.has('SIP-If-Match')).toBe(false);
    expect(new TextDecoder().decode(p3.message.body)).toContain('<note>a</note>');
    await peer.respond(p3, 200, {
      headers: [
        ['SIP-ETag', 'e2'],
        ['Expires', '60'],
      ],
    });
    await until(clock, () => out.success.length === 2);
    expect(h.get().etag).toBe('e2');
    expect(out.failed).toHaveLength(0);
  });

  it('§5: a 423 is retried with Min-Expires', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 35 });
    const alice = await node(network, clock, 5080, 'alice');
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    const { out, handler } = client();
    alice.dum.addClientPublicationHandler('presence', handler);
    alice.dum.send(
      alice.dum.makePublication(
        'sip:alice@127.0.0.1:5090',
        'presence',
        alice.profile,
        pidf('a'),
        PIDF,
        {
          expires: 10,
        },
      ),
    );
    const p1 = await peer.expectRequest('PUBLISH');
    await peer.respond(p1, 423, { headers: [['Min-Expires', '300']] });
    const p2 = await peer.expectRequest('PUBLISH');
    expect(p2.message.expires).toBe(300);
    expect(p2.message.body.length).toBeGreaterThan(0);
    await peer.respond(p2, 200, {
      headers: [
        ['SIP-ETag', 'e1'],
        ['Expires', '300'],
      ],
    });
    await until(clock, () => out.success.length === 1);
  });
});

describe('state agents sharing a publication store (RFC 3903 §6)', () => {
  function publishText(o: {
    to: number;
    branch: string;
    cseq: number;
    ifMatch?: string;
    expires: number;
    body?: string;
  }): string {
    const body = o.body ?? '';
    return (
      `PUBLISH sip:alice@127.0.0.1:5062 SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${o.branch}\r\n` +
      'Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=p1\r\nTo: <sip:alice@127.0.0.1>\r\n' +
      `Call-ID: shared-1\r\nCSeq: ${o.cseq} PUBLISH\r\nEvent: presence\r\nExpires: ${o.expires}\r\n` +
      (o.ifMatch ? `SIP-If-Match: ${o.ifMatch}\r\n` : '') +
      (body ? `Content-Type: ${PIDF}\r\n` : '') +
      `Content-Length: ${body.length}\r\n\r\n${body}`
    );
  }

  async function twoAgents(store?: PublicationStore) {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 37 });
    const a = await node(network, clock, 5062, 'agent');
    const b = await node(network, clock, 5063, 'agent');
    const shared = store ?? new InMemoryPublicationStore({ now: () => a.dum.now() });
    const ops = { a: [] as string[], b: [] as string[] };
    for (const [n, list] of [
      [a, ops.a],
      [b, ops.b],
    ] as const) {
      n.dum.setPublicationStore(shared);
      n.dum.addServerPublicationHandler('presence', {
        onInitial: (_h, e) => list.push(`initial ${e}`),
        onRefresh: (_h, e) => list.push(`refresh ${e}`),
        onUpdate: (_h, e) => list.push(`update ${e}`),
        onRemoved: (_h, e) => list.push(`removed ${e}`),
        onExpired: (_h, e) => list.push(`expired ${e}`),
      });
    }
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    return { clock, a, b, ops, shared, peer };
  }

  it('§6 step 5: a refresh through B of state published through A; A then answers 412 to the old tag; B reports the expiry', async () => {
    const { clock, a, b, ops, shared, peer } = await twoAgents();
    const to = (port: number) => ({ address: '127.0.0.1', port });
    await peer.send(
      publishText({ to: 5062, branch: 's1', cseq: 1, expires: 60, body: pidf('a') }),
      to(5062),
    );
    const e1 = (await peer.expectResponse(200, 'PUBLISH')).message.header('SIP-ETag') as string;
    await peer.send(
      publishText({ to: 5063, branch: 's2', cseq: 2, expires: 60, ifMatch: e1 }),
      to(5063),
    );
    const e2 = (await peer.expectResponse(200, 'PUBLISH')).message.header('SIP-ETag') as string;
    expect(e2).not.toBe(e1);
    expect(ops.b).toEqual([`refresh ${e1}`]);
    // The body published through A is what B now holds.
    const [state] = await b.dum.publicationStore.find('sip:alice@127.0.0.1:5062', 'presence');
    expect(state?.etag).toBe(e2);
    expect(new TextDecoder().decode(state?.body)).toContain('<note>a</note>');
    // A still holds a usage for e1, but the store says it was replaced.
    await peer.send(
      publishText({ to: 5062, branch: 's3', cseq: 3, expires: 60, ifMatch: e1 }),
      to(5062),
    );
    await peer.expectResponse(412, 'PUBLISH');
    // §6: the state expires once, reported by the agent that stored it last.
    await until(clock, () => ops.b.length === 2, { steps: 200, stepMs: 500 });
    expect(ops.b[1]).toBe(`expired ${e2}`);
    // A's usage for e1 ended quietly: no second report of the expiry.
    expect(ops.a).toHaveLength(1);
    expect(ops.a[0]).toMatch(/^initial /);
    expect(await shared.find('sip:alice@127.0.0.1:5062', 'presence')).toEqual([]);
    expect(a.dum.handles.size + b.dum.handles.size).toBe(0);
  });

  it('§6: a publication outlives the shutdown of the agent that took it; another agent removes it', async () => {
    const { a, b, ops, shared, peer } = await twoAgents();
    const to = (port: number) => ({ address: '127.0.0.1', port });
    await peer.send(
      publishText({ to: 5062, branch: 'r1', cseq: 1, expires: 600, body: pidf('r') }),
      to(5062),
    );
    const e1 = (await peer.expectResponse(200, 'PUBLISH')).message.header('SIP-ETag') as string;
    await a.dum.shutdown({ timeoutMs: 100 });
    expect((await shared.get(e1))?.aor).toBe('sip:alice@127.0.0.1:5062');
    await peer.send(
      publishText({ to: 5063, branch: 'r2', cseq: 2, expires: 0, ifMatch: e1 }),
      to(5063),
    );
    const ok = await peer.expectResponse(200, 'PUBLISH');
    expect(ok.message.expires).toBe(0);
    expect(ops.b).toEqual([`removed ${e1}`]);
    expect(await shared.get(e1)).toBeUndefined();
    expect(b.dum.handles.size).toBe(0);
  });

  it('§6, RFC 3261 §21.5.1: a store that fails gets 500 with Retry-After, and the agent keeps going', async () => {
    const broken: PublicationStore = {
      newEtag: () => 'e0',
      get: () => Promise.reject(new Error('store down')),
      put: () => Promise.reject(new Error('store down')),
      remove: () => Promise.reject(new Error('store down')),
      find: () => Promise.reject(new Error('store down')),
    };
    const { a, peer } = await twoAgents(broken);
    a.dum.masterProfile.set('storeFailureRetryAfter', 11);
    const to = { address: '127.0.0.1', port: 5062 };
    await peer.send(
      publishText({ to: 5062, branch: 'f1', cseq: 1, expires: 60, body: pidf('f') }),
      to,
    );
    const initial = await peer.expectResponse(500, 'PUBLISH');
    expect(initial.message.header('Retry-After')).toBe('11');
    await peer.send(
      publishText({ to: 5062, branch: 'f2', cseq: 2, expires: 60, ifMatch: 'e0' }),
      to,
    );
    const refresh = await peer.expectResponse(500, 'PUBLISH');
    expect(refresh.message.header('Retry-After')).toBe('11');
    expect(a.dum.handles.size).toBe(0);
  });
});
