import type * as NodeDns from 'node:dns/promises';

/** A named channel, the part of `node:diagnostics_channel`'s `Channel` the stack uses. */
export interface Channel {
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
  subscribe(listener: (message: unknown, name: string | symbol) => void): void;
  unsubscribe(listener: (message: unknown, name: string | symbol) => void): unknown;
}

export type ChannelFactory = (name: string) => Channel;

/** The part of `os.networkInterfaces()` the stack reads. */
export type InterfaceLister = () => Record<
  string,
  { address: string; family: string | number; internal: boolean }[] | undefined
>;

/** `node:dns/promises` (a type only: nothing of it is loaded from here). */
export type DnsModule = typeof NodeDns;
