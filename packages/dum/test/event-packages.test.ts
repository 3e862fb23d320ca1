import { createResponse, type SipRequest } from '@sipworks/message';
import { MemoryNetwork, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  buildDialogInfo,
  buildMessageSummary,
  buildPidf,
  type ClientInviteSession,
  DIALOG_INFO_CONTENT_TYPE,
  DialogEventStateManager,
  type DialogInfoDialog,
  type Handle,
  type InviteSessionEvent,
  MESSAGE_SUMMARY_CONTENT_TYPE,
  parseDialogInfo,
  parseMessageSummary,
  parsePidf,
  type ServerInviteSession,
} from '../src/index.ts';
import { node, until } from './support.ts';

const OFFER =
  'v=0\r\no=carol 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER =
  'v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

describe('message-summary bodies (RFC 3842)', () => {
  it('§5.2: Messages-Waiting, Message-Account and class lines with urgent counts are written and read back', () => {
    const body = buildMessageSummary({
      messagesWaiting: true,
      messageAccount: 'sip:alice@vm.example.com',
      counts: {
        'voice-message': { new: 2, old: 8, urgentNew: 0, urgentOld: 2 },
        'fax-message': { new: 1, old: 0 },
      },
    });
    expect(body).toBe(
      'Messages-Waiting: yes\r\nMessage-Account: sip:alice@vm.example.com\r\n' +
        'Voice-Message: 2/8 (0/2)\r\nFax-Message: 1/0\r\n',
    );
    expect(parseMessageSummary(body)).toEqual({
      messagesWaiting: true,
      messageAccount: 'sip:alice@vm.example.com',
      counts: {
        'voice-message': { new: 2, old: 8, urgentNew: 0, urgentOld: 2 },
        'fax-message': { new: 1, old: 0 },
      },
    });
  });

  it('§5.2: names are case-insensitive, unknown classes and bad lines are skipped, extension headers kept', () => {
    const s = parseMessageSummary(
      'messages-waiting: NO\nvoice-message: 0/3\nSmoke-Signal: 1/1\nText-Message: x/y\n\nX-Box: 4\n',
    );
    expect(s).toEqual({
      messagesWaiting: false,
      counts: { 'voice-message': { new: 0, old: 3 } },
      extra: [['X-Box', '4']],
    });
    expect(parseMessageSummary('Voice-Message: 1/2\r\n')).toBeUndefined();
    expect(parseMessageSummary(new Uint8Array([0xff, 0xfe, 0x00]))).toBeUndefined();
  });

  it('RFC 3842 §3, RFC 6665 §4.2: a voicemail DUM notifies the summary; the subscriber reads it', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 61 });
    const alice = await node(network, clock, 5061, 'alice');
    const vm = await node(network, clock, 5062, 'vm');
    vm.dum.addServerSubscriptionHandler('message-summary', {
      onNewSubscription: (h) => {
        const s = h.get();
        s.accept(200);
        s.send(
          s.update(
            buildMessageSummary({
              messagesWaiting: true,
              counts: { 'voice-message': { new: 2, old: 8, urgentNew: 0, urgentOld: 2 } },
            }),
            MESSAGE_SUMMARY_CONTENT_TYPE,
          ),
        );
      },
    });
    const got: SipRequest[] = [];
    alice.dum.addClientSubscriptionHandler('message-summary', {
      onUpdateActive: (_h, n) => got.push(n),
    });
    alice.dum.send(
      alice.dum.makeSubscription('sip:alice@127.0.0.1:5062', 'message-summary', alice.profile),
    );
    await until(clock, () => got.length === 1);
    expect(got[0]?.contentType?.mimeType).toBe(MESSAGE_SUMMARY_CONTENT_TYPE);
    const s = parseMessageSummary(got[0]?.body as Uint8Array);
    expect(s?.messagesWaiting).toBe(true);
    expect(s?.counts['voice-message']).toEqual({ new: 2, old: 8, urgentNew: 0, urgentOld: 2 });
  });
});

describe('presence documents (RFC 3863)', () => {
  it('§4.1: tuples with basic status, contact, note and timestamp, and presentity notes, round-trip with escaping', () => {
    const xml = buildPidf({
      entity: 'pres:alice@example.com',
      tuples: [
        { id: 't1', basic: 'open', contact: 'sip:alice@192.0.2.1', note: 'at <home> & "free"' },
        { id: 't2', basic: 'closed', timestamp: '2026-11-25T15:00:00Z' },
      ],
      notes: ['away soon'],
    });
    expect(xml).toContain('&lt;home&gt; &amp; &quot;free&quot;');
    expect(parsePidf(xml)).toEqual({
      entity: 'pres:alice@example.com',
      tuples: [
        { id: 't1', basic: 'open', contact: 'sip:alice@192.0.2.1', note: 'at <home> & "free"' },
        { id: 't2', basic: 'closed', timestamp: '2026-11-25T15:00:00Z' },
      ],
      notes: ['away soon'],
    });
  });

  it('§4.1: namespace prefixes are understood; a body that is not PIDF gives undefined, never a throw', () => {
    const p = parsePidf(
      '<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="pres:bob@example.com">' +
        "<p:tuple id='x'><p:status><p:basic>open</p:basic></p:status></p:tuple></p:presence>",
    );
    expect(p?.tuples).toEqual([{ id: 'x', basic: 'open' }]);
    expect(parsePidf('not xml at all')).toBeUndefined();
    // A document cut short has no presence element to read.
    expect(parsePidf('<presence entity="a"><tuple id="1"><status>')).toBeUndefined();
    expect(() => parsePidf('<'.repeat(100_000))).not.toThrow();
  });
});

describe('dialog event package (RFC 4235)', () => {
  it('§4.1: dialog-info documents round-trip: ids, direction, state with event and code, duration, participants', () => {
    const dialogs: DialogInfoDialog[] = [
      {
        id: 'd1',
        callId: 'c@x',
        localTag: 'l1',
        remoteTag: 'r1',
        direction: 'recipient',
        state: 'terminated',
        event: 'rejected',
        code: 486,
        duration: 0,
        local: { identity: 'sip:bob@example.com', displayName: 'Bob' },
        remote: { identity: 'sip:carol@example.com', target: 'sip:carol@192.0.2.9' },
      },
    ];
    const xml = buildDialogInfo({
      version: 3,
      state: 'full',
      entity: 'sip:bob@example.com',
      dialogs,
    });
    expect(parseDialogInfo(xml)).toEqual({
      version: 3,
      state: 'full',
      entity: 'sip:bob@example.com',
      dialogs,
    });
    expect(
      parseDialogInfo(
        '<dialog-info version="x"><dialog id="1"><state>dancing</state></dialog></dialog-info>',
      ),
    ).toEqual({ version: 0, state: 'full', entity: '', dialogs: [] });
  });

  it('§3.7.1, §4.1: alice subscribes to the dialog state of bob and sees a call from carol go trying, early, confirmed, terminated', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 71 });
    const alice = await node(network, clock, 5061, 'alice');
    const bob = await node(network, clock, 5062, 'bob');
    const carol = await node(network, clock, 5063, 'carol');
    const states = new DialogEventStateManager(bob.dum);
    bob.dum.addServerSubscriptionHandler('dialog', states.subscriptionHandler());
    const seen: InviteSessionEvent['type'][] = [];
    bob.dum.addInviteSessionObserver({ onInviteSessionEvent: (e) => seen.push(e.type) });
    let incoming: Handle<ServerInviteSession> | undefined;
    bob.dum.setInviteSessionHandler({ onNewSession: (h) => (incoming = h) });
    const carolEvents: string[] = [];
    carol.dum.setInviteSessionHandler({
      onConnected: () => carolEvents.push('connected'),
      onTerminated: (_h, r) => carolEvents.push(`terminated:${r}`),
    });

    const docs: SipRequest[] = [];
    alice.dum.addClientSubscriptionHandler('dialog', { onUpdateActive: (_h, n) => docs.push(n) });
    alice.dum.send(alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'dialog', alice.profile));
    await until(clock, () => docs.length === 1);
    const info = (n: SipRequest | undefined) => parseDialogInfo(n?.body ?? new Uint8Array());
    expect(docs[0]?.contentType?.mimeType).toBe(DIALOG_INFO_CONTENT_TYPE);
    expect(info(docs[0])).toEqual({
      version: 0,
      state: 'full',
      entity: 'sip:bob@127.0.0.1:5062',
      dialogs: [],
    });

    const call = carol.dum.send<ClientInviteSession>(
      carol.dum.makeInviteSession('sip:bob@127.0.0.1:5062', carol.profile, { body: OFFER }),
    );
    await until(clock, () => incoming !== undefined && docs.length === 2);
    const trying = info(docs[1])?.dialogs[0];
    expect(trying).toMatchObject({
      state: 'trying',
      direction: 'recipient',
      callId: call.get().request.callId,
      remoteTag: call.get().request.from.tag,
      local: { identity: 'sip:bob@127.0.0.1:5062' },
      remote: { identity: 'sip:carol@127.0.0.1:5063' },
    });

    incoming?.get().provisional(180);
    await until(clock, () => docs.length === 3);
    expect(info(docs[2])?.dialogs[0]).toMatchObject({ state: 'early', code: 180 });

    incoming?.get().accept({ body: ANSWER });
    await until(clock, () => docs.length === 4 && carolEvents.includes('connected'));
    expect(info(docs[3])?.dialogs[0]).toMatchObject({ state: 'confirmed', code: 200, duration: 0 });
    expect(states.dialogs('sip:bob@127.0.0.1:5062')).toHaveLength(1);

    clock.advance(5000);
    call.get().end();
    await until(clock, () => docs.length === 5);
    const ended = info(docs[4]);
    expect(ended?.version).toBe(4);
    expect(ended?.dialogs).toHaveLength(1);
    expect(ended?.dialogs[0]).toMatchObject({ state: 'terminated', event: 'remote-bye' });
    expect(ended?.dialogs[0]?.duration).toBeGreaterThanOrEqual(5);
    expect(states.dialogs('sip:bob@127.0.0.1:5062')).toEqual([]);
    expect(seen).toEqual(['created', 'provisional', 'confirmed', 'terminated']);
    states.close();
  });

  it('§3.7.1: on the caller side a rejected call goes trying, early, terminated (rejected, 486)', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 72 });
    const bob = await node(network, clock, 5062, 'bob');
    const carol = await node(network, clock, 5063, 'carol');
    const states = new DialogEventStateManager(carol.dum);
    const changes: [string, DialogInfoDialog][] = [];
    states.onDialogEvent((entity, d) => changes.push([entity, d]));
    bob.dum.setInviteSessionHandler({
      onNewSession: (h) => {
        h.get().provisional(183);
        h.get().reject(486);
      },
    });
    carol.dum.setInviteSessionHandler({});
    carol.dum.send(
      carol.dum.makeInviteSession('sip:bob@127.0.0.1:5062', carol.profile, { body: OFFER }),
    );
    await until(clock, () => changes.some(([, d]) => d.state === 'terminated'));
    expect(changes.every(([e]) => e === 'sip:carol@127.0.0.1:5063')).toBe(true);
    // 100 Trying leaves it in trying; the 183 with a To tag makes it early.
    expect(changes.map(([, d]) => d.state)).toEqual(['trying', 'early', 'terminated']);
    expect(changes.at(-1)?.[1]).toMatchObject({
      direction: 'initiator',
      event: 'rejected',
      code: 486,
    });
  });

  it('§3.7.1: a provisional without a To tag moves the caller to proceeding (100 Trying does not); 2xx to confirmed', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 73 });
    const carol = await node(network, clock, 5063, 'carol');
    carol.dum.setInviteSessionHandler({});
    const states = new DialogEventStateManager(carol.dum);
    const seen: string[] = [];
    states.onDialogEvent((_e, d) => seen.push(`${d.state}${d.code ? `:${d.code}` : ''}`));
    // Nobody answers at 5099: the observer is fed by hand with what the session would get.
    const call = carol.dum.send<ClientInviteSession>(
      carol.dum.makeInviteSession('sip:bob@127.0.0.1:5099', carol.profile, { body: OFFER }),
    );
    const session = call.get();
    const req = session.request;
    states.onInviteSessionEvent({
      type: 'provisional',
      session,
      response: createResponse(req, 100),
    });
    states.onInviteSessionEvent({
      type: 'provisional',
      session,
      response: createResponse(req, 180),
    });
    states.onInviteSessionEvent({
      type: 'confirmed',
      session,
      response: createResponse(req, 200, undefined, { toTag: 'b1' }),
    });
    expect(seen).toEqual(['trying', 'proceeding:180', 'confirmed:200']);
    expect(states.dialogs('sip:carol@127.0.0.1:5063')[0]).toMatchObject({
      direction: 'initiator',
      remoteTag: 'b1',
      localTag: req.from.tag,
    });
    call.get().end();
  });
});
