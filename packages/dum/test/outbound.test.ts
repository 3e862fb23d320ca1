import type { Contact, SipResponse } from '@sipworks/message';
import { MemoryNetwork, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientRegistration,
  type Handle,
  outboundBackoffSeconds,
  type ServerRegistration,
} from '../src/index.ts';
import { node, until } from './support.ts';

const INSTANCE = 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6';

/** alice (5061) registers with a registrar DUM (5062) that does outbound and GRUU. */
async function setup() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 81 });
  const alice = await node(network, clock, 5061, 'alice', 5062);
  const registrar = await node(network, clock, 5062, 'registrar');
  registrar.dum.setServerRegistrationHandler({});
  registrar.dum.setRegistrarOptions({ gruu: true, flowTimer: 120 });
  alice.profile.set('instanceId', INSTANCE);
  alice.profile.set('outbound', true);
  const ok: SipResponse[] = [];
  const failed: SipResponse[] = [];
  alice.dum.setClientRegistrationHandler({
    onSuccess: (_h, r) => ok.push(r),
    onFailure: (_h, r) => failed.push(r),
  });
  return { clock, network, alice, registrar, ok, failed };
}

describe('SIP Outbound and GRUU between DUMs (RFC 5626, RFC 5627)', () => {
  it('RFC 5627 §4.2, §5: the registrar assigns pub-gruu and temp-gruu; the client learns them and uses the GRUU as its Contact', async () => {
    const { clock, alice, ok } = await setup();
    const h = alice.dum.send<ClientRegistration>(
      alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 }),
    );
    await until(clock, () => ok.length === 1);
    const res = ok[0] as SipResponse;
    // RFC 5626 §6: outbound was asked for and is supported.
    expect(res.getAll<string>('Require')).toEqual(['outbound']);
    expect(res.header('Flow-Timer')).toBe('120');
    const reg = h.get();
    expect(reg.outboundActive).toBe(true);
    expect(reg.pubGruu?.toString()).toBe(`sip:alice@127.0.0.1:5062;gr=${INSTANCE}`);
    expect(reg.tempGruu?.user).toMatch(/^tgruu\./);
    expect(reg.tempGruu?.params.has('gr')).toBe(true);
    expect(reg.myContacts).toHaveLength(1);
    // RFC 5627 §4.3: later dialog-forming requests use the public GRUU as Contact.
    alice.dum.addClientSubscriptionHandler('presence', {});
    const sub = alice.dum.makeSubscription('sip:bob@127.0.0.1:5063', 'presence', alice.profile);
    expect(sub.contacts[0]?.uri.toString()).toBe(`sip:alice@127.0.0.1:5062;gr=${INSTANCE}`);
    alice.profile.set('gruuContact', 'temporary');
    const sub2 = alice.dum.makeSubscription('sip:bob@127.0.0.1:5063', 'presence', alice.profile);
    expect(sub2.contacts[0]?.uri.toString()).toBe(reg.tempGruu?.toString());
    // A REGISTER never uses it.
    const again = alice.dum.makeRegistration(undefined, alice.profile);
    expect((again.contacts[0] as Contact).uri.params.has('gr')).toBe(false);

    // The GRUUs go with the registration.
    reg.removeMyBindings();
    await until(clock, () => !h.isValid());
    expect(alice.profile.get('publicGruu')).toBeUndefined();
    expect(alice.profile.get('tempGruu')).toBeUndefined();
  });

  it('RFC 5626 §6: the registrar keeps instance and reg-id with the binding, and a REGISTER of the same instance and reg-id replaces it', async () => {
    const { clock, network, alice, registrar, ok } = await setup();
    alice.dum.send(alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 }));
    await until(clock, () => ok.length === 1);
    const store = registrar.dum.registrationPersistenceManager;
    const first = await store.getContacts('sip:alice@127.0.0.1:5062');
    expect(first).toHaveLength(1);
    expect(first[0]?.instanceId).toBe(`<${INSTANCE}>`);
    expect(first[0]?.regId).toBe(1);

    // The same device, rebooted on another port (a new flow): its binding replaces the old one.
    const moved = await node(network, clock, 5071, 'alice', 5062);
    moved.profile.set('instanceId', INSTANCE);
    moved.profile.set('outbound', true);
    const movedOk: SipResponse[] = [];
    moved.dum.setClientRegistrationHandler({ onSuccess: (_h, r) => movedOk.push(r) });
    moved.dum.send(moved.dum.makeRegistration(undefined, moved.profile, { expires: 600 }));
    await until(clock, () => movedOk.length === 1);
    const after = await store.getContacts('sip:alice@127.0.0.1:5062');
    expect(after).toHaveLength(1);
    expect(after[0]?.contact.uri.port).toBe(5071);
    expect(movedOk[0]?.contacts).toHaveLength(1);

    // Another reg-id of the same instance is another flow: both are kept.
    const second = await node(network, clock, 5072, 'alice', 5062);
    second.profile.set('instanceId', INSTANCE);
    second.profile.set('outbound', true);
    second.profile.set('regId', 2);
    const secondOk: SipResponse[] = [];
    second.dum.setClientRegistrationHandler({ onSuccess: (_h, r) => secondOk.push(r) });
    second.dum.send(second.dum.makeRegistration(undefined, second.profile, { expires: 600 }));
    await until(clock, () => secondOk.length === 1);
    expect(
      (await store.getContacts('sip:alice@127.0.0.1:5062')).map((b) => b.regId).sort(),
    ).toEqual([1, 2]);
  });

  it('RFC 5626 §6: outbound through a first hop whose Path lacks ;ob is refused with 439', async () => {
    const { clock, alice, failed } = await setup();
    const req = alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 });
    req.setHeader('Path', '<sip:edge@127.0.0.1:5066;lr>');
    alice.dum.send(req);
    await until(clock, () => failed.length === 1);
    expect(failed[0]?.status).toBe(439);
  });

  it('RFC 5626 §4.5: base-time * 2^failures, capped at max-time, then 50-100% of it', () => {
    expect(outboundBackoffSeconds(0, 30, 1800, () => 0)).toBe(15);
    expect(outboundBackoffSeconds(0, 30, 1800, () => 1)).toBe(30);
    expect(outboundBackoffSeconds(2, 30, 1800, () => 1)).toBe(120);
    expect(outboundBackoffSeconds(10, 30, 1800, () => 0.5)).toBe(1350);
  });

  it('RFC 5626 §4.5: a failing outbound registration keeps trying with a growing backoff, and recovers', async () => {
    const { clock, alice, registrar, ok, failed } = await setup();
    alice.profile.set('outboundBackoffBaseSeconds', 10);
    let refuse = 2;
    const tried: number[] = [];
    registrar.dum.setServerRegistrationHandler({
      onAdd: (h: Handle<ServerRegistration>) => {
        tried.push(clock.now());
        if (refuse-- > 0) h.get().reject(503);
        else void h.get().accept();
      },
    });
    const h = alice.dum.send<ClientRegistration>(
      alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 }),
    );
    await until(clock, () => ok.length === 1, { steps: 1000, stepMs: 100 });
    expect(failed.map((r) => r.status)).toEqual([503, 503]);
    expect(tried).toHaveLength(3);
    const gap1 = ((tried[1] as number) - (tried[0] as number)) / 1000;
    const gap2 = ((tried[2] as number) - (tried[1] as number)) / 1000;
    expect(gap1).toBeGreaterThanOrEqual(5);
    expect(gap1).toBeLessThanOrEqual(10.5);
    expect(gap2).toBeGreaterThanOrEqual(10);
    expect(gap2).toBeLessThanOrEqual(20.5);
    expect(h.get().state).toBe('registered');
    expect(h.get().consecutiveFailures).toBe(0);
  });

  it('RFC 5626 §4.4.2: a UDP flow is kept alive with STUN; when the registrar stops answering, the flow fails and the UA registers again', async () => {
    const { clock, network, alice, ok } = await setup();
    let lost = 0;
    alice.dum.setClientRegistrationHandler({
      onSuccess: (_h, r) => ok.push(r),
      onFlowTerminated: () => lost++,
    });
    const h = alice.dum.send<ClientRegistration>(
      alice.dum.makeRegistration(undefined, alice.profile, { expires: 3600 }),
    );
    await until(clock, () => ok.length === 1);
    const reg = h.get();
    expect(reg.outboundActive).toBe(true);
    expect(reg.flow?.transport.reliable).toBe(false);
    // Flow-Timer 120: a Binding request every 96-120 s, answered on the registrar's SIP port.
    await until(clock, () => reg.pongs >= 2, { steps: 300, stepMs: 1000 });
    expect(lost).toBe(0);
    // The registrar goes silent: no STUN answer within 10 s fails the flow (§4.4.2).
    network.conditions = { drop: 1 };
    await until(clock, () => lost === 1, { steps: 200, stepMs: 1000 });
    // Back again: the new REGISTER (retransmitted meanwhile) forms a new flow.
    network.conditions = {};
    await until(clock, () => ok.length === 2, { steps: 100, stepMs: 1000 });
    expect(h.get().state).toBe('registered');
    expect(h.get().outboundActive).toBe(true);
  });
});
