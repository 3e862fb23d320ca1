#!/usr/bin/env node
// The published entry point: the compiled CLI. In the repository, `pnpm sipworks`
// runs src/main.ts through tsx instead, with no build step.
import '../dist/main.js';
