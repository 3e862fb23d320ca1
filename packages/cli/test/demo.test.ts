import { afterEach, describe, expect, it } from 'vitest';
import { killAll, sipworks } from './support.ts';

describe('sipworks demo (the whole flow in one process, on loopback)', () => {
  afterEach(() => killAll());

  it('registers with digest auth, exchanges presence and MESSAGE, calls through the B2BUA, holds, transfers, hangs up and exits 0 (RFC 3261 §10, §13, §14, §22; RFC 3264 §8.4; RFC 3428; RFC 3515; RFC 3903; RFC 6665)', async () => {
    const started = Date.now();
    const r = await sipworks(['demo'], 20_000);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const lines = r.stdout.split('\n');
    const header = lines.find((l) => /alice\s+server\s+bob\s+carol/.test(l));
    expect(header).toBeDefined();
    const arrows = (label: string) =>
      lines.filter((l) => new RegExp(`-${label}-|${label}--`).test(l));
    // alice -> server over UDP: the challenged REGISTER, then the call; the server -> bob leg over TCP.
    expect(lines.some((l) => /\|-+REGISTER-+>\|\s+\|\s+\| UDP$/.test(l))).toBe(true);
    expect(lines.some((l) => /\|<-401 Unauthorized-+\|/.test(l))).toBe(true);
    // alice's credentials for the realm go with the INVITE (pre-emptive), then the bridged
    // leg; then the hold's re-INVITEs, the transfer's INVITE to carol and re-INVITE to bob.
    // (At least: over UDP a loaded machine may show a retransmission, RFC 3261 §17.1.1.2.)
    expect(arrows('INVITE').length).toBeGreaterThanOrEqual(6);
    expect(lines.some((l) => /\|\s+\|-+INVITE-+>\| +\| TCP$/.test(l))).toBe(true);
    expect(lines.some((l) => /\|<-+180 Ringing-+\|/.test(l))).toBe(true);
    expect(arrows('BYE').length).toBeGreaterThanOrEqual(2);
    for (const m of ['SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'MESSAGE', 'ACK'])
      expect(arrows(m).length).toBeGreaterThan(0);
    expect(lines.some((l) => /\| WS$/.test(l))).toBe(true);
    expect(r.stdout).toMatch(/Summary\n(\s+ok .*\n){8}/);

    const section = (title: string) => {
      const from = lines.findIndex((l) => l.startsWith(`== ${title}`));
      const to = lines.findIndex((l, i) => i > from && (l.startsWith('== ') || l === 'Summary'));
      expect(from, title).toBeGreaterThan(0);
      return lines.slice(from + 1, to);
    };
    // Hold (RFC 3264 §8.4): alice's re-INVITE, relayed by the server to bob's leg; each
    // answered 200 and ACKed.
    const hold = section('hold');
    expect(hold.filter((l) => /\|-+INVITE-+>\|\s+\|\s+\| UDP$/.test(l)).length).toBeGreaterThan(0);
    expect(hold.filter((l) => /\|\s+\|-+INVITE-+>\|\s+\| TCP$/.test(l))).toHaveLength(1);
    expect(hold.filter((l) => /-ACK-/.test(l)).length).toBeGreaterThanOrEqual(2);
    // Transfer (RFC 3515): REFER, 202, a NOTIFY per sipfrag (100, 180, 200) to alice; the
    // server's INVITE to carol over WebSocket and its re-INVITE to bob; BYE to alice.
    const transfer = section('transfer');
    expect(transfer.some((l) => /\|-+REFER-+>\|\s+\|\s+\| UDP$/.test(l))).toBe(true);
    expect(transfer.some((l) => /\|<-+202 Accepted-+\|/.test(l))).toBe(true);
    expect(
      transfer.filter((l) => /\|<-+NOTIFY-+\|\s+\|\s+\| UDP$/.test(l)).length,
    ).toBeGreaterThanOrEqual(3);
    expect(transfer.some((l) => /\|\s+\|-+INVITE-+>\| WS$/.test(l))).toBe(true);
    expect(transfer.some((l) => /\|\s+\|-+INVITE-+>\|\s+\| TCP$/.test(l))).toBe(true);
    expect(transfer.some((l) => /\|<-+BYE-+\|\s+\|\s+\| UDP$/.test(l))).toBe(true);
  });
});
