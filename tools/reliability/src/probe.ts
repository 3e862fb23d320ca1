import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

/**
 * A bare UDP SIP client for health checks: one OPTIONS (RFC 3261 §11) at a time, matched
 * to its response by branch, timed from send to response. It runs no stack of its own,
 * so what it measures is the server's latency, not a client's.
 */
export class UdpProbe {
  private readonly socket = dgram.createSocket('udp4');
  private readonly waiting = new Map<string, (text: string) => void>();
  private port = 0;

  async open(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.port = this.socket.address().port;
    this.socket.on('message', (data) => {
      const text = data.toString('latin1');
      const branch = /branch=([^;\s,]+)/.exec(text)?.[1];
      if (branch) this.waiting.get(branch)?.(text);
    });
  }

  /** Send OPTIONS to the server; resolves with the status and the round trip (ms), or rejects after `timeoutMs`. */
  options(
    target: { address: string; port: number },
    timeoutMs = 2000,
  ): Promise<{ status: number; ms: number; text: string }> {
    return this.request(
      'OPTIONS',
      `sip:${target.address}:${target.port}`,
      target,
      { from: 'sip:probe@127.0.0.1', to: `sip:${target.address}:${target.port}` },
      timeoutMs,
    );
  }

  /**
   * Send a request built from `fields` (From and To URIs, extra header lines) and wait
   * for its final response: status, round trip (ms) and the response's text.
   */
  request(
    method: string,
    uri: string,
    target: { address: string; port: number },
    fields: { from: string; to: string; headers?: string[] },
    timeoutMs = 2000,
  ): Promise<{ status: number; ms: number; text: string }> {
    const branch = `z9hG4bK-probe-${randomBytes(6).toString('hex')}`;
    const text =
      `${method} ${uri} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport\r\n` +
      'Max-Forwards: 70\r\n' +
      `From: <${fields.from}>;tag=${branch.slice(-8)}\r\n` +
      `To: <${fields.to}>\r\n` +
      `Call-ID: ${branch}@probe\r\n` +
      `CSeq: 1 ${method}\r\n` +
      (fields.headers ?? []).map((h) => `${h}\r\n`).join('') +
      'Content-Length: 0\r\n\r\n';
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(branch);
        reject(new Error(`no answer to OPTIONS within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(branch, (res) => {
        const status = Number(/^SIP\/2\.0 (\d{3})/.exec(res)?.[1]);
        if (status < 200) return; // a provisional answer: keep waiting for the final one
        clearTimeout(timer);
        this.waiting.delete(branch);
        resolve({ status, ms: performance.now() - started, text: res });
      });
      this.socket.send(text, target.port, target.address);
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
