import type { SipRequest, SipResponse } from '@sipworks/message';
import { MemoryNetwork, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import type { ClientRegistration, Handle } from '../src/index.ts';
import { node, until } from './support.ts';

/**
 * alice (5061) registers with a registrar DUM (5062) that hands out a Service-Route
 * through a "home proxy" DUM (5063); bob's DUM (5064) is the final target.
 */
async function setup() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 33 });
  const alice = await node(network, clock, 5061, 'alice', 5062);
  const registrar = await node(network, clock, 5062, 'registrar');
  const home = await node(network, clock, 5063, 'home');
  registrar.dum.setServerRegistrationHandler({});
  registrar.dum.setRegistrarOptions({ serviceRoute: ['<sip:orig@127.0.0.1:5063;lr>'] });
  const atHome: SipRequest[] = [];
  home.dum.setServerPagerMessageHandler({
    onMessageArrived: (h, m) => {
      atHome.push(m);
      h.get().accept();
    },
  });
  const ok: SipResponse[] = [];
  const removed: SipResponse[] = [];
  alice.dum.setClientRegistrationHandler({
    onSuccess: (_h, r) => ok.push(r),
    onRemoved: (_h, r) => removed.push(r),
  });
  return { clock, alice, registrar, home, atHome, ok, removed };
}

describe('Path and Service-Route between DUMs (RFC 3327, RFC 3608)', () => {
  it('RFC 3608 §6.1: the Service-Route of the 2xx becomes the preloaded route of later requests, until the registration ends', async () => {
    const { clock, alice, atHome, ok, removed } = await setup();
    const h = alice.dum.send<ClientRegistration>(
      alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 }),
    );
    await until(clock, () => ok.length === 1);
    expect(ok[0]?.headers('Service-Route')).toEqual(['<sip:orig@127.0.0.1:5063;lr>']);
    expect(h.get().serviceRoute.map(String)).toEqual(['<sip:orig@127.0.0.1:5063;lr>']);
    expect(alice.profile.get('serviceRoute').map(String)).toEqual(['<sip:orig@127.0.0.1:5063;lr>']);

    // An out-of-dialog MESSAGE goes to the first Route: the home proxy, not bob.
    alice.dum.makePagerMessage('sip:bob@127.0.0.1:5064', alice.profile).get().page('via home');
    await until(clock, () => atHome.length === 1);
    const m = atHome[0] as SipRequest;
    expect(m.uri.toString()).toBe('sip:bob@127.0.0.1:5064');
    expect(m.headers('Route')).toEqual(['<sip:orig@127.0.0.1:5063;lr>']);

    // Dialog-creating requests carry it too (§6.1); REGISTER never does.
    alice.dum.addClientSubscriptionHandler('presence', {});
    const sub = alice.dum.makeSubscription('sip:bob@127.0.0.1:5064', 'presence', alice.profile);
    expect(sub.headers('Route')).toEqual(['<sip:orig@127.0.0.1:5063;lr>']);
    expect(alice.dum.makeRegistration(undefined, alice.profile).headers('Route')).toEqual([]);

    // The refresh keeps no Route either, and a 2xx that has none clears it.
    alice.dum.setRegistrarOptions({});
    const reg = h.get();
    reg.removeMyBindings();
    await until(clock, () => removed.length === 1);
    expect(alice.profile.get('serviceRoute')).toEqual([]);
    const after = alice.dum.makeSubscription('sip:bob@127.0.0.1:5064', 'presence', alice.profile);
    expect(after.headers('Route')).toEqual([]);
  });

  it('RFC 3608 §6.1: an outbound proxy stays the first hop, the Service-Route follows it', async () => {
    const { clock, alice, ok } = await setup();
    alice.dum.send(alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 }));
    await until(clock, () => ok.length === 1);
    const p = alice.dum.makeUserProfile({
      aor: '<sip:alice@127.0.0.1:5062>',
      outboundProxy: 'sip:127.0.0.1:5065',
    });
    p.set('serviceRoute', alice.profile.get('serviceRoute'));
    const req = alice.dum.makeOutOfDialogRequest('sip:bob@127.0.0.1:5064', 'OPTIONS', p);
    expect(req.headers('Route')).toEqual([
      '<sip:127.0.0.1:5065;lr>',
      '<sip:orig@127.0.0.1:5063;lr>',
    ]);
  });

  it('RFC 3327 §5.3, §6: the registrar stores the Path of the REGISTER with the binding and returns it in the 2xx', async () => {
    const { clock, alice, registrar, ok } = await setup();
    const req = alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 });
    // What an edge proxy on the way would add (RFC 3327 §5.2).
    req.setHeader('Path', '<sip:edge@127.0.0.1:5066;lr>');
    req.setHeader('Supported', 'path');
    // §5.2: a proxy that adds Path for a UA that did not ask may require path of the registrar.
    req.setHeader('Require', 'path');
    const h: Handle<ClientRegistration> = alice.dum.send(req);
    await until(clock, () => ok.length === 1);
    expect(ok[0]?.headers('Path')).toEqual(['<sip:edge@127.0.0.1:5066;lr>']);
    const b = await registrar.dum.registrationPersistenceManager.getContacts(
      'sip:alice@127.0.0.1:5062',
    );
    expect(b).toHaveLength(1);
    expect(b[0]?.path).toEqual(['<sip:edge@127.0.0.1:5066;lr>']);
    expect(h.get().state).toBe('registered');
  });
});
