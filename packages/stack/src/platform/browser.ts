/**
 * The browser side of `#platform` (see `./node.ts`). A page has no diagnostics channels
 * (events are not published), no interface list (a transport advertises what it is told
 * or a loopback address) and no DNS: the WebSocket URL names the outbound proxy, and a
 * resolver, when one is needed, is passed in `ResolveOptions.resolver`.
 */
import type { ChannelFactory, DnsModule, InterfaceLister } from './types.ts';

export const channelFactory: ChannelFactory | undefined = undefined;
export const listInterfaces: InterfaceLister | undefined = undefined;
export const loadDns = (): DnsModule | undefined => undefined;
