#!/usr/bin/env node
/** The `sipworks` executable: run the command line and exit with its status. */
import { run } from './run.ts';

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Sockets are closed by then; exit anyway so a stray timer cannot hold the process.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (e: unknown) => {
    process.stderr.write(`sipworks: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(3);
  },
);
