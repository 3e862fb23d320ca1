import { defineConfig } from 'vitest/config';

/** One vitest project per package; `extends: true` gives each the settings below (timeouts). */
const project = (name: string, root: string) => ({
  extends: true as const,
  test: { name, root, include: ['test/**/*.test.ts'] },
});

export default defineConfig({
  test: {
    projects: [
      project('message', './packages/message'),
      project('stack', './packages/stack'),
      project('dum', './packages/dum'),
      project('cli', './packages/cli'),
      project('transport-udp', './packages/transport-udp'),
      project('transport-tcp', './packages/transport-tcp'),
      project('transport-tls', './packages/transport-tls'),
      project('transport-ws', './packages/transport-ws'),
      project('store-redis', './packages/store-redis'),
      project('webrtc', './packages/webrtc'),
      project('bench', './tools/bench'),
      project('interop', './tools/interop'),
      project('examples', './tools/examples'),
    ],
    testTimeout: 20_000,
  },
});
