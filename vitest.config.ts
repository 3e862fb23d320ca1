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
      {
        extends: true as const,
        test: {
          name: 'interop',
          root: './tools/interop',
          include: ['test/**/*.test.ts'],
          exclude: ['test/browser.interop.test.ts'],
        },
      },
      // Headless Chromium takes the machine's cores for a few seconds: it runs after every
      // other project, so that it does not slow down their timing-bounded tests.
      {
        extends: true as const,
        test: {
          name: 'browser',
          root: './tools/interop',
          include: ['test/browser.interop.test.ts'],
          sequence: { groupOrder: 1 },
        },
      },
      project('examples', './tools/examples'),
      project('scaleout', './tools/scaleout'),
      project('api-docs', './tools/api-docs'),
      project('reliability', './tools/reliability'),
    ],
    testTimeout: 20_000,
  },
});
