import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'message',
          root: './packages/message',
          include: ['test/**/*.test.ts'],
        },
      },
    ],
    testTimeout: 20_000,
  },
});
