import { SipStack } from '@sipworks/stack';
import { type MemoryNetwork, MemoryTransport, type VirtualClock } from '@sipworks/stack/testing';
import { DialogUsageManager, type UserProfile } from '../src/index.ts';

/** One DUM on the memory network, with a user profile for `user`. */
export interface Node {
  dum: DialogUsageManager;
  profile: UserProfile;
  port: number;
}

/** A DUM on its own stack at `port`; the profile's AOR is `sip:user@127.0.0.1:aorPort` (default: `port`). */
export async function node(
  network: MemoryNetwork,
  clock: VirtualClock,
  port: number,
  user: string,
  aorPort = port,
): Promise<Node> {
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  const profile = dum.makeUserProfile({ aor: `<sip:${user}@127.0.0.1:${aorPort}>` });
  return { dum, profile, port };
}

/** Move the virtual clock in steps until `cond` holds; throw after `steps` steps (default 1000 of 10 ms). */
export async function until(
  clock: VirtualClock,
  cond: () => boolean,
  options?: { steps?: number; stepMs?: number; each?: () => void },
): Promise<void> {
  const steps = options?.steps ?? 1000;
  for (let i = 0; i < steps && !cond(); i++) {
    options?.each?.();
    clock.advance(options?.stepMs ?? 10);
    await new Promise((r) => setImmediate(r));
  }
  if (!cond()) throw new Error('condition not reached');
}
