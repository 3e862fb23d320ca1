import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Kamailio configuration of the scale-out topology (documented in docs/scale-out.md). */
export const DISPATCHER_CONFIG = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'kamailio',
  'dispatcher.cfg',
);

/** The modules dispatcher.cfg loads. */
export const DISPATCHER_MODULES = [
  'tm',
  'sl',
  'rr',
  'pv',
  'maxfwd',
  'textops',
  'siputils',
  'xlog',
  'sanity',
  'path',
  'dispatcher',
  'ctl',
] as const;

/**
 * Write a dispatcher list file (`ds_list_file`): every node in set 1, as
 * `1 sip:ADDRESS:PORT`, in the order given.
 */
export function writeDispatcherList(
  file: string,
  nodes: ReadonlyArray<{ address: string; port: number }>,
): void {
  const lines = [
    '# setid destination: the sipworks serve nodes behind this proxy',
    ...nodes.map((n) => `1 sip:${n.address}:${n.port}`),
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/** One node as Kamailio's dispatcher sees it. */
export interface DispatcherTarget {
  uri: string;
  /**
   * The state flags: first `A` (active), `I` (inactive) or `D` (disabled), then `P`
   * when it is being probed (`AP`: up and probed; `IP`: down, probed until it answers).
   */
  flags: string;
}

/**
 * The destinations of every set, from `kamcmd -s SOCKET dispatcher.list` (the ctl
 * module's binrpc socket); rejects when kamcmd fails or prints no destination.
 */
export function dispatcherTargets(kamcmd: string, socket: string): Promise<DispatcherTarget[]> {
  return new Promise((resolve, reject) => {
    execFile(
      kamcmd,
      ['-s', socket, 'dispatcher.list'],
      { encoding: 'utf8', timeout: 5_000 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`kamcmd dispatcher.list failed: ${err.message} ${stderr}`));
          return;
        }
        const targets: DispatcherTarget[] = [];
        let uri: string | undefined;
        for (const line of stdout.split('\n')) {
          const m = /^\s*(URI|FLAGS):\s*(\S+)/.exec(line);
          if (m?.[1] === 'URI') uri = m[2];
          else if (m?.[1] === 'FLAGS' && uri !== undefined) {
            targets.push({ uri, flags: m[2] ?? '' });
            uri = undefined;
          }
        }
        if (targets.length === 0)
          reject(new Error(`kamcmd dispatcher.list: no DEST in\n${stdout}`));
        else resolve(targets);
      },
    );
  });
}
