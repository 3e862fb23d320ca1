/**
 * The browser side of `#platform` (see `./node.ts`). A page has no `node:diagnostics_channel`,
 * so channels are a small in-page registry with the same `subscribe`/`publish` (a page
 * draws its ladder from `channel('sip:transport:send')`); no interface list (a transport
 * advertises what it is told or a loopback address); and no DNS: the WebSocket URL names
 * the outbound proxy, and a resolver, when one is needed, is passed to the stack.
 */
import type { Channel, ChannelFactory, DnsModule, InterfaceLister } from './types.ts';

type Listener = (message: unknown, name: string | symbol) => void;

/** One in-page channel: publish calls each subscriber; a throwing one does not stop the rest. */
class PageChannel implements Channel {
  private readonly listeners = new Set<Listener>();
  private readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  get hasSubscribers(): boolean {
    return this.listeners.size > 0;
  }
  publish(message: unknown): void {
    for (const l of this.listeners) {
      try {
        l(message, this.name);
      } catch (e) {
        // As diagnostics_channel does: a subscriber's error must not break the publisher.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
  subscribe(listener: Listener): void {
    this.listeners.add(listener);
  }
  unsubscribe(listener: Listener): boolean {
    return this.listeners.delete(listener);
  }
}

const channels = new Map<string, PageChannel>();

export const channelFactory: ChannelFactory | undefined = (name) => {
  let c = channels.get(name);
  if (!c) channels.set(name, (c = new PageChannel(name)));
  return c;
};
export const listInterfaces: InterfaceLister | undefined = undefined;
export const loadDns = (): DnsModule | undefined => undefined;
