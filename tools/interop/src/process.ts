import type { ChildProcess } from 'node:child_process';

/** How a peer process ended. */
export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * What every peer runner (SIPp, Kamailio, baresip) keeps of its process: the tail of its
 * output (stdout and stderr together, `clean` applied to each chunk), whether it still
 * runs, and when it exits. A process that cannot be spawned counts as exited, with the
 * reason in its output.
 */
export class ProcessWatch {
  output = '';
  running = true;
  readonly exited: Promise<ProcessEnd>;

  constructor(child: ChildProcess, keep: number, clean: (text: string) => string = (t) => t) {
    const take = (chunk: Buffer): void => {
      this.output = (this.output + clean(chunk.toString('utf8'))).slice(-keep);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.running = false;
        this.output += `\nspawn failed: ${err.message}`;
        resolve({ code: null, signal: null });
      });
      child.once('exit', (code, signal) => {
        this.running = false;
        resolve({ code, signal });
      });
    });
  }
}
