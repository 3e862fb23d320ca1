import type { SipRequest, SipResponse } from '@sipworks/message';
import { channelFactory } from '#platform';
import type { Channel } from './platform/types.ts';

/** Names of the diagnostics channels the stack publishes on. */
export const CHANNELS = {
  send: 'sip:transport:send',
  receive: 'sip:transport:receive',
  drop: 'sip:transport:drop',
  transactionState: 'sip:transaction:state',
} as const;

export interface TransportMessageEvent {
  direction: 'send' | 'receive';
  message: SipRequest | SipResponse;
  bytes: Uint8Array;
  protocol: string;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  time: number;
}

export interface TransportDropEvent {
  reason: string;
  status?: number;
  bytes: Uint8Array;
  protocol: string;
  remote: { address: string; port: number };
  time: number;
}

export interface TransactionStateEvent {
  id: string;
  kind: 'invite-client' | 'non-invite-client' | 'invite-server' | 'non-invite-server';
  method: string;
  /** The state after the event. */
  state: string;
  /** The state before the event (the same as `to` for `start`). */
  from: string;
  /** The state after the event (the same as `state`). */
  to: string;
  /** What happened: `start`, `response2xx`, `timerB`, `SIP_ERR_TRANSPORT`... */
  event: string;
  time: number;
}

const silent: Channel = {
  hasSubscribers: false,
  publish() {},
  subscribe() {},
  unsubscribe: () => false,
};

/** A named channel: `node:diagnostics_channel` in Node.js, an in-page registry in a browser. */
export function channel(name: string): Channel {
  return channelFactory ? channelFactory(name) : silent;
}

/** The stack's channels, looked up once. */
export const diagnostics = {
  send: channel(CHANNELS.send),
  receive: channel(CHANNELS.receive),
  drop: channel(CHANNELS.drop),
  transactionState: channel(CHANNELS.transactionState),
};

/** The logger interface the stack writes to (pino satisfies it). Silent by default. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
