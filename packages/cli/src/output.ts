/** Where the CLI writes: human lines, or one JSON object per line (`--json`). */
export class Output {
  readonly json: boolean;
  readonly colour: boolean;
  private readonly t0 = performance.now();
  private readonly out: (s: string) => void;
  private readonly err: (s: string) => void;

  constructor(options: {
    json: boolean;
    colour: boolean;
    out?: (s: string) => void;
    err?: (s: string) => void;
  }) {
    this.json = options.json;
    this.colour = options.colour;
    this.out = options.out ?? ((s) => process.stdout.write(`${s}\n`));
    this.err = options.err ?? ((s) => process.stderr.write(`${s}\n`));
  }

  /** Milliseconds since the command started. */
  elapsed(): number {
    return Math.round(performance.now() - this.t0);
  }

  /** A line for people (stdout); nothing in JSON mode. */
  line(text: string): void {
    if (!this.json) this.out(text);
  }

  /** A trace line: stdout, or stderr in JSON mode so that stdout stays JSON. */
  trace(text: string): void {
    if (this.json) this.err(text);
    else this.out(text);
  }

  /** An event: a JSON object in JSON mode (with `ms` since the start), else `text` if given. */
  event(event: string, fields: Record<string, unknown>, text?: string): void {
    if (this.json) this.out(JSON.stringify({ event, ms: this.elapsed(), ...fields }));
    else if (text !== undefined) this.out(text);
  }

  /** An error for people: always on stderr (and as an `error` event in JSON mode). */
  error(message: string): void {
    if (this.json) this.out(JSON.stringify({ event: 'error', ms: this.elapsed(), message }));
    this.err(`sipworks: ${message}`);
  }
}

/** Whether to colour: stdout is a terminal and NO_COLOR is not set (https://no-color.org). */
export function wantColour(stream: { isTTY?: boolean } = process.stdout): boolean {
  const noColor = process.env.NO_COLOR;
  return stream.isTTY === true && (noColor === undefined || noColor === '');
}
