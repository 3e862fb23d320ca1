import { describe, expect, it, vi } from 'vitest';
import { peerGate } from '../src/peer.ts';

describe('peerGate: the real-peer rule (skip with the reason printed, fail when CI=true)', () => {
  it('a missing peer outside CI: skipped, and the reason and package are printed', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const gate = peerGate('baresip', { available: false, reason: '/x not found' }, 'baresip', {});
      expect(gate.skip).toBe(true);
      expect(warn).toHaveBeenCalledWith(
        '[interop] baresip tests skipped: /x not found (apt-get install baresip)',
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('a missing peer with CI=true: not skipped, and require() throws with the reason', () => {
    const gate = peerGate('baresip', { available: false, reason: '/x not found' }, 'baresip', {
      CI: 'true',
    });
    expect(gate.skip).toBe(false);
    expect(() => gate.require()).toThrow(
      'baresip is required when CI=true, but /x not found (apt-get install baresip)',
    );
  });

  it('an installed peer: runs, in CI or not', () => {
    for (const env of [{}, { CI: 'true' }]) {
      const gate = peerGate('SIPp', { available: true }, 'sip-tester', env);
      expect(gate.skip).toBe(false);
      expect(() => gate.require()).not.toThrow();
    }
  });
});
