import { createResponse, parseMessage, type SipRequest, type SipResponse } from '@sipworks/message';
import { type MemoryNetwork, MemoryTransport } from '../memory-transport.ts';
import type { VirtualClock } from './virtual-clock.ts';

export interface ScriptStep {
  at: number;
  message: SipRequest | SipResponse;
  source: { address: string; port: number };
}

/**
 * A raw SIP peer for tests that read like wire transcripts, in the spirit of
 * reSIProcate's tfm: "expect this on the wire, send that". It sits on a
 * `MemoryNetwork`; `expectRequest` and `expectResponse` move the virtual clock until
 * the message arrives (or fail after a bounded time).
 */
export class ScriptedPeer {
  readonly transport: MemoryTransport;
  readonly clock: VirtualClock;
  /** Everything received, in order. */
  readonly log: ScriptStep[] = [];
  private next = 0;

  constructor(
    network: MemoryNetwork,
    clock: VirtualClock,
    options?: { port?: number; address?: string; protocol?: string; reliable?: boolean },
  ) {
    this.clock = clock;
    this.transport = new MemoryTransport({ network, ...options });
  }

  async start(): Promise<this> {
    await this.transport.start({
      receive: (data, source) => {
        const message = data instanceof Uint8Array ? parseMessage(data) : data;
        this.log.push({ at: this.clock.now(), message, source });
      },
      connectionClosed() {},
      error() {},
    });
    return this;
  }

  async stop(): Promise<void> {
    await this.transport.stop();
  }

  get address(): { address: string; port: number } {
    return { address: this.transport.local.address, port: this.transport.local.port };
  }

  /** Wait for the next message not yet expected that matches, moving the clock in `stepMs` steps up to `withinMs`. */
  private async wait(
    match: (m: SipRequest | SipResponse) => boolean,
    what: string,
    withinMs: number,
    stepMs: number,
  ): Promise<ScriptStep> {
    const end = this.clock.now() + withinMs;
    for (;;) {
      for (let i = this.next; i < this.log.length; i++) {
        const s = this.log[i] as ScriptStep;
        if (match(s.message)) {
          this.next = i + 1;
          return s;
        }
      }
      if (this.clock.now() >= end) {
        const seen = this.log
          .slice(this.next)
          .map((s) => (s.message.isRequest ? s.message.method : String(s.message.status)));
        throw new Error(
          `expected ${what} within ${withinMs} ms; got ${seen.length ? seen.join(', ') : 'nothing'}`,
        );
      }
      this.clock.advance(stepMs);
      // Let promise callbacks (sends) run between steps.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Expect a request of `method`; returns it and where it came from. */
  async expectRequest(
    method: string,
    options?: { withinMs?: number; stepMs?: number },
  ): Promise<ScriptStep & { message: SipRequest }> {
    const s = await this.wait(
      (m) => m.isRequest && m.method === method,
      `a ${method}`,
      options?.withinMs ?? 32_000,
      options?.stepMs ?? 10,
    );
    return s as ScriptStep & { message: SipRequest };
  }

  /** Expect a response with `status` (and optionally to `method`). */
  async expectResponse(
    status: number,
    method?: string,
    options?: { withinMs?: number; stepMs?: number },
  ): Promise<ScriptStep & { message: SipResponse }> {
    const s = await this.wait(
      (m) =>
        !m.isRequest && m.status === status && (method === undefined || m.cseq.method === method),
      `a ${status}${method ? ` to ${method}` : ''}`,
      options?.withinMs ?? 32_000,
      options?.stepMs ?? 10,
    );
    return s as ScriptStep & { message: SipResponse };
  }

  /** Nothing more arrives within `ms`. */
  async expectNothing(ms: number, stepMs = 10): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(stepMs);
      await new Promise((r) => setImmediate(r));
    }
    if (this.log.length > this.next) {
      const extra = this.log
        .slice(this.next)
        .map((s) => (s.message.isRequest ? s.message.method : String(s.message.status)));
      throw new Error(`expected nothing, got ${extra.join(', ')}`);
    }
  }

  /** Send text (or a message) to an address. */
  async send(
    message: string | SipRequest | SipResponse,
    to: { address: string; port: number },
  ): Promise<void> {
    const bytes =
      typeof message === 'string' ? new TextEncoder().encode(message) : message.serialize();
    await this.transport.send(bytes, to);
  }

  /** Answer a request received from `step`, sent back where it came from. */
  async respond(
    step: ScriptStep & { message: SipRequest },
    status: number,
    options?: { toTag?: string; headers?: [string, string][]; reason?: string },
  ): Promise<SipResponse> {
    const res = createResponse(step.message, status, options?.reason, {
      ...(options?.toTag !== undefined
        ? { toTag: options.toTag }
        : status > 100
          ? { toTag: 'scripted' }
          : {}),
      ...(options?.headers ? { headers: options.headers } : {}),
    });
    await this.send(res, step.source);
    return res;
  }
}
