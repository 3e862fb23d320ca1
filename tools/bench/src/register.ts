/**
 * The register section: registrations per core-second, without and with
 * digest auth, the way the uas section measures calls. SIPp's client sends one
 * REGISTER per call for a new address of record each time (so the registrar
 * stores a new binding per call), or with auth a REGISTER, the 401 and the
 * REGISTER with SIPp's MD5 answer. The servers: `sipworks serve` (its
 * registrar, with `--users` and `--digest MD5` for auth), SIPp as a registrar
 * (answers 200 and stores nothing; with auth it checks the answer with
 * verifyauth), and a registrar on the `sip` npm package.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BenchConfig, formatTable, heading, type Section } from './harness.ts';
import {
  describeSipp,
  ensureBuilt,
  type LoadTarget,
  loadRounds,
  loadSettings,
  SCENARIO_DIR,
  SERVE_ARGS,
  SERVE_COMMAND,
  ServerProcess,
  SIPP_BINARY,
  type SippLoad,
  sippVersion,
  summarize,
} from './load.ts';
import { type SectionReport, verdict } from './report.ts';
import { LOAD_COLUMNS, loadRow, loadUnavailable, SIPWORKS } from './uas.ts';

/** Registrations per core-second the issue asks for, without and with auth. */
export const REGISTER_TARGET = 8000;
export const REGISTER_AUTH_TARGET = 4000;

/** What `node --cpu-prof --cpu-prof-interval 100` of serve showed under each REGISTER load. */
const REGISTER_PROFILE =
  'What the profile shows (10,000 REGISTERs at 1,000/s, shares of busy time): 19% sending the ' +
  'UDP datagram, 14% garbage collection, 25% answering in ServerRegistration.accept (the 200 ' +
  'with every binding as a Contact with its expires, its serialization), 8% validating the ' +
  'request, the rest parsing, the DUM dispatch and the store. The sip registrar stores the ' +
  "Contact header as parsed and echoes it; it checks nothing of RFC 3261 §10.3's steps.";
const REGISTER_AUTH_PROFILE =
  'What the profile shows (8,000 authenticated registrations at 800/s, shares of busy time): ' +
  '18% sending UDP datagrams (two per registration), 11% garbage collection, 9% building the ' +
  '401 with its HMAC-signed nonce, 11% verifying the answer (its HMAC, the MD5 digests), the rest ' +
  'the two REGISTERs through parser, validation, DUM and store as without auth. Before this ' +
  'section found it, every verification rehashed every nonce in use once more than 10,000 were.';
const SIP_REGISTRAR = 'sip (npm) registrar';
const USER = 'bench';
const PASSWORD = 'bench-pw';
const REALM = 'sipworks';

const NODE = process.execPath;
const PEER = 'tools/bench/src/sip-peer.ts';

function targets(auth: boolean, usersFile: string): LoadTarget[] {
  const authArgs = auth ? ['--users', usersFile, '--digest', 'MD5', '--realm', REALM] : [];
  const sippScenario = path.join(SCENARIO_DIR, auth ? 'register-auth-uas.xml' : 'register-uas.xml');
  const peerArgs = auth ? [USER, PASSWORD, REALM] : [];
  return [
    {
      name: SIPWORKS,
      command: `${SERVE_COMMAND} --listen udp:127.0.0.1:PORT --quiet${auth ? ` --users USERS --digest MD5 --realm ${REALM}` : ''}`,
      start: (port) =>
        new ServerProcess(SIPWORKS, port, NODE, [
          ...SERVE_ARGS,
          '--listen',
          `udp:127.0.0.1:${port}`,
          '--quiet',
          ...authArgs,
        ]),
    },
    {
      name: 'SIPp registrar',
      command: `sipp -sf ${path.basename(sippScenario)} -t u1 -i 127.0.0.1 -p PORT -nostdin`,
      start: (port) =>
        new ServerProcess('SIPp registrar', port, SIPP_BINARY, [
          '-sf',
          sippScenario,
          '-t',
          'u1',
          '-i',
          '127.0.0.1',
          '-p',
          String(port),
          '-nostdin',
        ]),
    },
    {
      name: SIP_REGISTRAR,
      command: `node --import tsx ${PEER} registrar PORT${auth ? ` ${USER} ${PASSWORD} ${REALM}` : ''}`,
      start: (port) =>
        new ServerProcess(SIP_REGISTRAR, port, NODE, [
          '--import',
          'tsx',
          PEER,
          'registrar',
          String(port),
          ...peerArgs,
        ]),
    },
  ];
}

const n = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');

async function runRegister(config: BenchConfig, report: SectionReport): Promise<void> {
  console.log(heading('register: registrations per core-second, without and with digest auth'));
  const why = loadUnavailable();
  if (why) {
    console.log(`skipped: ${why}`);
    report.note(`Not measured: ${why}.`);
    return;
  }
  const s = loadSettings(config.quick);
  ensureBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-bench-users-'));
  const usersFile = path.join(dir, 'users.txt');
  fs.writeFileSync(usersFile, `${USER}:${PASSWORD}\n`);
  try {
    for (const auth of [false, true]) {
      const target = auth ? REGISTER_AUTH_TARGET : REGISTER_TARGET;
      const load: SippLoad = {
        scenario: [
          '-sf',
          path.join(SCENARIO_DIR, auth ? 'register-auth-uac.xml' : 'register-uac.xml'),
        ],
        calls: s.calls,
        rate: s.rate,
        processes: s.processes,
        ...(auth ? { extra: ['-au', USER, '-ap', PASSWORD] } : {}),
      };
      const warmup: SippLoad = { ...load, calls: Math.min(load.calls, 600) };
      const all = targets(auth, usersFile);
      const label = auth
        ? 'with digest auth (REGISTER, 401, REGISTER, 200)'
        : 'without auth (REGISTER, 200)';
      console.log(
        `\n${label}: ${sippVersion()}; ${describeSipp(load)}; ${s.rounds} rounds, 1 warm-up`,
      );
      const results = await loadRounds(all, load, warmup, s.rounds, (r, total) =>
        console.log(`  round ${r}/${total}`),
      );
      const sums = summarize(results, SIP_REGISTRAR);
      const rows = sums.map((x) =>
        loadRow(x, x.name === SIPWORKS ? target : undefined, 'registrations'),
      );
      console.log(formatTable(LOAD_COLUMNS, rows));
      report.table({
        title: `REGISTER ${label}, ${n(s.calls)} per round at ${n(s.rate)}/s, medians of ${s.rounds} rounds`,
        columns: LOAD_COLUMNS,
        rows,
      });
      report.command(describeSipp(load));
      for (const t of all) report.command(t.command);
      const me = sums.find((x) => x.name === SIPWORKS);
      if (me && Number.isFinite(me.perCoreSecond) && me.perCoreSecond < target) {
        report.note(
          `Target ${auth ? 'with' : 'without'} auth not met: ${n(me.perCoreSecond)} registrations per ` +
            `core-second against ${n(target)} (${verdict(me.perCoreSecond, target)}). ` +
            (auth ? REGISTER_AUTH_PROFILE : REGISTER_PROFILE),
        );
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  report.note(
    'A registration is one SIPp call: one REGISTER answered 200, or with auth the REGISTER, its 401 ' +
      'and the REGISTER with the MD5 answer. Every call registers a new address of record ' +
      '(user<call number>, Expires 3600), so sipworks and the sip registrar hold a growing table ' +
      'through the run; SIPp as registrar stores nothing. CPU as in the uas section.',
  );
}

export const registerSection: Section = {
  name: 'register',
  title: 'register: registrations per core-second under SIPp load',
  run: runRegister,
};
