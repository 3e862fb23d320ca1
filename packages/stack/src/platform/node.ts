/**
 * What the stack takes from Node.js. The package's `#platform` import resolves here
 * everywhere but in a browser build, which gets `./browser.ts` (package.json `imports`,
 * condition `browser`); both export the same names, so nothing else in the stack names a
 * Node module and a browser bundle of it carries none.
 */
import * as diagnosticsChannel from 'node:diagnostics_channel';
import { networkInterfaces } from 'node:os';
import type { ChannelFactory, DnsModule, InterfaceLister } from './types.ts';

/** `node:diagnostics_channel`'s `channel`: where the stack publishes its events. */
export const channelFactory: ChannelFactory | undefined = (name) =>
  diagnosticsChannel.channel(name);

/** The host's network interfaces, for the address a wildcard-bound transport advertises. */
export const listInterfaces: InterfaceLister | undefined = () => networkInterfaces();

/**
 * `node:dns/promises`, for the default RFC 3263 resolver: fetched when first needed (a
 * stack given its own resolver never loads it), through `process.getBuiltinModule`
 * (Node.js 20.16 or newer).
 */
export const loadDns = (): DnsModule | undefined =>
  process.getBuiltinModule?.('node:dns/promises') as DnsModule | undefined;
