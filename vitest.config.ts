import { defineConfig } from 'vitest/config';

const project = (name: string, root: string) => ({
  test: { name, root, include: ['test/**/*.test.ts'] },
});

export default defineConfig({
  test: {
    projects: [
      project('message', './packages/message'),
      project('stack', './packages/stack'),
      project('transport-udp', './packages/transport-udp'),
      project('transport-tcp', './packages/transport-tcp'),
      project('bench', './tools/bench'),
    ],
    testTimeout: 20_000,
  },
});
