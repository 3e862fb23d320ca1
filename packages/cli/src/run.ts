import { runClient } from './client.ts';
import { runDemo } from './demo.ts';
import { CliError, EXIT, type ExitCode, UsageError } from './errors.ts';
import { type CliOptions, parseCommandLine, USAGE } from './options.ts';
import { Output, wantColour } from './output.ts';
import { runServe } from './serve.ts';

/**
 * Run the `sipworks` command line (the arguments after the script name); resolves with
 * the exit status: 0 success, 1 the peer answered with a failure, 2 usage error, 3
 * timeout or transport error.
 */
export async function run(argv: string[]): Promise<ExitCode> {
  let o: CliOptions;
  try {
    o = parseCommandLine(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sipworks: ${e.message}\n\n${USAGE}\n`);
      return EXIT.usage;
    }
    throw e;
  }
  if (o.help || o.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const out = new Output({ json: o.json, colour: wantColour() });
  try {
    switch (o.command) {
      case 'serve':
        return await runServe(o, out);
      case 'demo':
        return await runDemo(o, out);
      default:
        return await runClient(o, out);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sipworks: ${e.message}\n\n${USAGE}\n`);
      return EXIT.usage;
    }
    if (e instanceof CliError) {
      out.error(e.message);
      return e.exitCode;
    }
    const err = e as Error & { code?: string };
    out.error(
      `${err.code ? `${err.code}: ` : ''}${err.message}; run again with --trace to see the messages`,
    );
    return EXIT.timeout;
  }
}
