import { afterEach, describe, expect, it } from 'vitest';
import { killAll, sipworks } from './support.ts';

describe('sipworks demo (the whole flow in one process, on loopback)', () => {
  afterEach(() => killAll());

  it('registers with digest auth, exchanges presence and MESSAGE, calls through the B2BUA, hangs up and exits 0 (RFC 3261 §10, §13, §22; RFC 3428; RFC 3903; RFC 6665)', async () => {
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
    // alice's credentials for the realm go with the INVITE (pre-emptive), then the bridged leg.
    expect(arrows('INVITE').length).toBe(2);
    expect(lines.some((l) => /\|\s+\|-+INVITE-+>\| +\| TCP$/.test(l))).toBe(true);
    expect(lines.some((l) => /\|<-+180 Ringing-+\|/.test(l))).toBe(true);
    expect(arrows('BYE').length).toBeGreaterThanOrEqual(2);
    for (const m of ['SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'MESSAGE', 'ACK'])
      expect(arrows(m).length).toBeGreaterThan(0);
    expect(lines.some((l) => /\| WS$/.test(l))).toBe(true);
    expect(r.stdout).toMatch(/Summary\n(\s+ok .*\n){6}/);
    expect(r.stdout).toMatch(/hold \(re-INVITE\) and transfer \(REFER\): not yet/);
  });
});
