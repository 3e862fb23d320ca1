/** What a real peer's probe found: whether it can run here, and why not. */
export interface PeerAvailability {
  available: boolean;
  /** Why the peer cannot be used, when it cannot. */
  reason?: string;
}

/**
 * The rule for tests against a real peer: without the peer the suite is skipped with the
 * reason printed, except when `CI=true`, where it runs and fails in `beforeAll`
 * (through `require()`), so that a CI machine missing a package never goes green.
 */
export interface PeerGate {
  /** Pass to `describe.skipIf`. */
  readonly skip: boolean;
  /** Call in `beforeAll`: throws when the peer is missing (reached only when CI=true). */
  require(): void;
}

/**
 * The gate for one peer. `name` and `install` (the Debian package, for the message) name
 * it; the warning is printed once, when the test file is loaded.
 */
export function peerGate(
  name: string,
  info: PeerAvailability,
  install: string,
  env: NodeJS.ProcessEnv = process.env,
): PeerGate {
  const inCi = env.CI === 'true';
  if (!info.available && !inCi)
    console.warn(`[interop] ${name} tests skipped: ${info.reason} (apt-get install ${install})`);
  return {
    skip: !info.available && !inCi,
    require(): void {
      if (!info.available)
        throw new Error(
          `${name} is required when CI=true, but ${info.reason} (apt-get install ${install})`,
        );
    },
  };
}
