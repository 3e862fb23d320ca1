import { EXIT, type ExitCode } from './errors.ts';
import type { CliOptions } from './options.ts';
import type { Output } from './output.ts';

export async function runDemo(_o: CliOptions, _out: Output): Promise<ExitCode> {
  return EXIT.ok;
}
