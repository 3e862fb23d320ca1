/**
 * The parse section: messages per second and retained heap per message for
 * @sipworks/message and the parsers of three npm SIP libraries, on the same
 * corpus and doing the same work per message: parse, then read the method or
 * status, Call-ID, CSeq number, From tag and the branch of the top Via through
 * the library's own API.
 */
import { createRequire } from 'node:module';
import { Core } from 'sip.js';
import { averageBytes, type CorpusMessage, corpus, type Expected } from './corpus.ts';
import {
  type BenchConfig,
  type Column,
  canCollect,
  formatBytes,
  formatRate,
  formatRateShort,
  formatRatio,
  formatTable,
  heading,
  interleavedRounds,
  keepAliveToken,
  median,
  perRoundRatios,
  retainedPerResult,
  type Section,
  type Timed,
} from './harness.ts';

const require = createRequire(import.meta.url);

type Kind = 'subject' | 'peer' | 'baseline';

/** The fields every parser reads, as it read them. */
interface Fields {
  readonly method: string | undefined;
  readonly status: number | undefined;
  readonly callId: string | undefined;
  readonly cseq: number | undefined;
  readonly fromTag: string | undefined;
  readonly branch: string | undefined;
}

/**
 * One parser under test. `I` is the input in the form the library takes it.
 * `batch` and `keep` each hold their own call to the parser, so every library
 * gets a call site of its own that the JIT can specialise.
 */
interface Contender<I> {
  readonly name: string;
  readonly kind: Kind;
  /** What the parser is handed, for the table. */
  readonly input: string;
  /** Turns corpus bytes into a fresh input (a new object each call). */
  prepare(bytes: Uint8Array): I;
  /** Parses every input and reads the fields; returns their checksum. */
  batch(inputs: readonly I[]): number;
  /** Parses one input and returns the fields read, or undefined if it failed. */
  read(input: I): Fields | undefined;
  /** Parses one input, reads the fields and returns what should be kept. */
  keep(input: I): unknown;
}

// biome-ignore lint/suspicious/noExplicitAny: contenders differ in input type
type AnyContender = Contender<any>;

/** The checksum of one message's fields; every contender folds the same. */
function fold(first: number, callId: string, cseq: number, tag: string, branch: string): number {
  return first + callId.length + cseq + tag.length + branch.length;
}

function expectedChecksum(expect: Expected): number {
  const first = expect.status ?? (expect.method ?? '').length;
  return fold(first, expect.callId, expect.cseq, expect.fromTag, expect.branch);
}

function headerLineCount(message: CorpusMessage): number {
  const head = message.text.slice(0, message.text.indexOf('\r\n\r\n'));
  return head.split('\r\n').length - 1;
}

function version(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return '?';
  }
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0];
}

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');
const asUtf8String = (bytes: Uint8Array): string => utf8.decode(bytes);

// --- @sipworks/message ------------------------------------------------------

type SipworksModule = typeof import('@sipworks/message');
type SipworksMessage = ReturnType<SipworksModule['parseMessage']>;

/**
 * Imported on demand so that a package that fails to load (or lacks an export)
 * becomes an "unavailable" row instead of stopping the whole run.
 */
async function loadSipworks(): Promise<SipworksModule> {
  return import('@sipworks/message');
}

function requireExport<K extends keyof SipworksModule>(
  api: SipworksModule,
  name: K,
): SipworksModule[K] {
  const value = api[name];
  if (typeof value !== 'function') throw new Error(`@sipworks/message does not export ${name}`);
  return value;
}

function sipworksFields(m: SipworksMessage): Fields {
  return {
    method: m.isRequest ? m.method : undefined,
    status: m.isRequest ? undefined : m.status,
    callId: m.callId,
    cseq: m.cseq.seq,
    fromTag: m.from.tag,
    branch: m.via[0]?.branch,
  };
}

function sipworksBytes(api: SipworksModule): Contender<Uint8Array> {
  const parseMessage = requireExport(api, 'parseMessage');
  return {
    name: '@sipworks/message',
    kind: 'subject',
    input: 'Uint8Array',
    prepare: (bytes) => bytes.slice(),
    batch(inputs) {
      let sum = 0;
      for (let i = 0; i < inputs.length; i++) {
        const m = parseMessage(inputs[i]);
        const first = m.isRequest ? m.method.length : m.status;
        sum += fold(first, m.callId, m.cseq.seq, m.from.tag as string, m.via[0].branch as string);
      }
      return sum;
    },
    read: (input) => sipworksFields(parseMessage(input)),
    keep(input) {
      const m = parseMessage(input);
      sipworksFields(m);
      return m;
    },
  };
}

function sipworksValidated(api: SipworksModule): Contender<Uint8Array> {
  const parseMessage = requireExport(api, 'parseMessage');
  const validateMessage = requireExport(api, 'validateMessage');
  return {
    name: '@sipworks/message +validate',
    kind: 'subject',
    input: 'Uint8Array',
    prepare: (bytes) => bytes.slice(),
    batch(inputs) {
      let sum = 0;
      for (let i = 0; i < inputs.length; i++) {
        const m = validateMessage(parseMessage(inputs[i]));
        const first = m.isRequest ? m.method.length : m.status;
        sum += fold(first, m.callId, m.cseq.seq, m.from.tag as string, m.via[0].branch as string);
      }
      return sum;
    },
    read: (input) => sipworksFields(validateMessage(parseMessage(input))),
    keep(input) {
      const m = validateMessage(parseMessage(input));
      sipworksFields(m);
      return m;
    },
  };
}

// --- sip.js (SIP.js, onsip) -------------------------------------------------

function sipJs(): Contender<string> {
  // The parser SIP.js's UserAgent runs on every message its transport
  // receives: Core.Parser.parseMessage(text, logger).
  const { Parser, LoggerFactory, IncomingResponseMessage } = Core;
  const factory = new LoggerFactory();
  factory.builtinEnabled = false;
  const logger = factory.getLogger('sip.parser');
  return {
    name: `sip.js ${version('sip.js')}`,
    kind: 'peer',
    input: 'string (UTF-8)',
    prepare: asUtf8String,
    batch(inputs) {
      let sum = 0;
      for (let i = 0; i < inputs.length; i++) {
        const m = Parser.parseMessage(inputs[i], logger);
        if (m === undefined) throw new Error('sip.js could not parse a corpus message');
        const first =
          m instanceof IncomingResponseMessage ? (m.statusCode as number) : m.method.length;
        sum += fold(first, m.callId, m.cseq, m.fromTag, m.viaBranch);
      }
      return sum;
    },
    read(input) {
      const m = Parser.parseMessage(input, logger);
      if (m === undefined) return undefined;
      const response = m instanceof IncomingResponseMessage;
      return {
        method: response ? undefined : m.method,
        status: response ? m.statusCode : undefined,
        callId: m.callId,
        cseq: m.cseq,
        fromTag: m.fromTag,
        branch: m.viaBranch,
      };
    },
    keep(input) {
      const m = Parser.parseMessage(input, logger);
      if (m !== undefined) {
        const response = m instanceof IncomingResponseMessage;
        fold(
          response ? (m.statusCode as number) : m.method.length,
          m.callId,
          m.cseq,
          m.fromTag,
          m.viaBranch,
        );
      }
      return m;
    },
  };
}

// --- JsSIP ------------------------------------------------------------------

interface JssipMessage {
  method: string;
  status_code?: number;
  call_id: string;
  cseq: number;
  from_tag: string;
  via_branch: string;
}
interface JssipParser {
  parseMessage(data: string, ua: object): JssipMessage | undefined;
}

function jssip(): Contender<string> {
  // JsSIP's package entry does not export its parser; UA.receiveRequest gets
  // messages from lib/Parser.js, which only stores the ua on requests, so an
  // empty object stands in for it.
  const parser = require('jssip/lib/Parser.js') as JssipParser;
  const ua = {};
  return {
    name: `jssip ${version('jssip')}`,
    kind: 'peer',
    input: 'string (UTF-8)',
    prepare: asUtf8String,
    batch(inputs) {
      let sum = 0;
      for (let i = 0; i < inputs.length; i++) {
        const m = parser.parseMessage(inputs[i], ua);
        if (m === undefined) throw new Error('jssip could not parse a corpus message');
        const first = m.status_code !== undefined ? m.status_code : m.method.length;
        sum += fold(first, m.call_id, m.cseq, m.from_tag, m.via_branch);
      }
      return sum;
    },
    read(input) {
      const m = parser.parseMessage(input, ua);
      if (m === undefined) return undefined;
      const response = m.status_code !== undefined;
      return {
        method: response ? undefined : m.method,
        status: m.status_code,
        callId: m.call_id,
        cseq: m.cseq,
        fromTag: m.from_tag,
        branch: m.via_branch,
      };
    },
    keep(input) {
      const m = parser.parseMessage(input, ua);
      if (m !== undefined) {
        const first = m.status_code !== undefined ? m.status_code : m.method.length;
        fold(first, m.call_id, m.cseq, m.from_tag, m.via_branch);
      }
      return m;
    },
  };
}

// --- sip (kirm/sip.js on npm as "sip") ----------------------------------------

interface SipParams {
  readonly params: Record<string, string | null | undefined>;
}
interface SipMessage {
  method?: string;
  status?: number;
  headers: {
    'call-id': string;
    cseq: { seq: number; method: string };
    from: SipParams;
    via: SipParams[];
  };
}
interface SipModule {
  parse(data: string): SipMessage | undefined;
}

function sip(): Contender<string> {
  const { parse } = require('sip') as SipModule;
  return {
    name: `sip ${version('sip')}`,
    kind: 'peer',
    input: 'string (UTF-8)',
    prepare: asUtf8String,
    batch(inputs) {
      let sum = 0;
      for (let i = 0; i < inputs.length; i++) {
        const m = parse(inputs[i]);
        if (m === undefined) throw new Error('sip could not parse a corpus message');
        const h = m.headers;
        const first = m.status !== undefined ? m.status : (m.method as string).length;
        sum += fold(
          first,
          h['call-id'],
          h.cseq.seq,
          h.from.params.tag as string,
          h.via[0].params.branch as string,
        );
      }
      return sum;
    },
    read(input) {
      const m = parse(input);
      if (m === undefined) return undefined;
      const h = m.headers;
      return {
        method: m.status !== undefined ? undefined : m.method,
        status: m.status,
        callId: h['call-id'],
        cseq: h.cseq?.seq,
        fromTag: h.from?.params.tag ?? undefined,
        branch: h.via?.[0]?.params.branch ?? undefined,
      };
    },
    keep(input) {
      const m = parse(input);
      if (m !== undefined) {
        const h = m.headers;
        const first = m.status !== undefined ? m.status : (m.method as string).length;
        fold(
          first,
          h['call-id'],
          h.cseq.seq,
          h.from.params.tag as string,
          h.via[0].params.branch as string,
        );
      }
      return m;
    },
  };
}

// --- baseline -----------------------------------------------------------------

/** The floor: find the end of the header block and each header line, build nothing. */
function baseline(): Contender<string> {
  const countLines = (s: string): number => {
    const end = s.indexOf('\r\n\r\n');
    let pos = s.indexOf('\r\n');
    let lines = 0;
    while (pos < end) {
      pos = s.indexOf('\r\n', pos + 2);
      lines++;
    }
    return lines;
  };
  return {
    name: 'baseline (indexOf)',
    kind: 'baseline',
    input: 'string (latin1)',
    prepare: (bytes) => latin1.decode(bytes),
    batch(inputs) {
      let sum = 0;
      for (let i = 0; i < inputs.length; i++) sum += countLines(inputs[i]);
      return sum;
    },
    read: () => undefined,
    keep: (input) => countLines(input),
  };
}

// --- the section ----------------------------------------------------------------

interface Loader {
  readonly name: string;
  readonly kind: Kind;
  readonly input: string;
  load(): Promise<AnyContender>;
}

function loaders(): Loader[] {
  let sipworks: Promise<SipworksModule> | undefined;
  const api = () => {
    sipworks ??= loadSipworks();
    return sipworks;
  };
  return [
    {
      name: '@sipworks/message',
      kind: 'subject',
      input: 'Uint8Array',
      load: async () => sipworksBytes(await api()),
    },
    {
      name: '@sipworks/message +validate',
      kind: 'subject',
      input: 'Uint8Array',
      load: async () => sipworksValidated(await api()),
    },
    { name: 'sip.js', kind: 'peer', input: 'string (UTF-8)', load: async () => sipJs() },
    { name: 'jssip', kind: 'peer', input: 'string (UTF-8)', load: async () => jssip() },
    { name: 'sip', kind: 'peer', input: 'string (UTF-8)', load: async () => sip() },
    {
      name: 'baseline (indexOf)',
      kind: 'baseline',
      input: 'string (latin1)',
      load: async () => baseline(),
    },
  ];
}

interface Check {
  readonly ok: boolean;
  /** Excluded from timing: it could not parse every message. */
  readonly fatal: boolean;
  readonly summary: string;
  readonly problems: string[];
}

const FIELDS: readonly (keyof Fields & keyof Expected)[] = [
  'method',
  'status',
  'callId',
  'cseq',
  'fromTag',
  'branch',
];

function check(c: AnyContender, messages: readonly CorpusMessage[]): Check {
  const problems: string[] = [];
  let fatal = false;
  if (c.kind === 'baseline') {
    let got = 0;
    let want = 0;
    for (const m of messages) {
      got += c.keep(c.prepare(m.bytes)) as number;
      want += headerLineCount(m);
    }
    const ok = got === want;
    return {
      ok,
      fatal: false,
      summary: `reads nothing; counted ${got} of ${want} header lines`,
      problems: ok ? [] : [`counted ${got} header lines, the corpus has ${want}`],
    };
  }
  let good = 0;
  for (const m of messages) {
    let fields: Fields | undefined;
    try {
      fields = c.read(c.prepare(m.bytes));
    } catch (error) {
      problems.push(`${m.name}: threw ${reasonOf(error)}`);
      fatal = true;
      continue;
    }
    if (fields === undefined) {
      problems.push(`${m.name}: not parsed`);
      fatal = true;
      continue;
    }
    const wrong = FIELDS.filter((f) => fields[f] !== m.expect[f]).map(
      (f) => `${f} ${JSON.stringify(fields[f])} (want ${JSON.stringify(m.expect[f])})`,
    );
    if (wrong.length === 0) good++;
    else problems.push(`${m.name}: ${wrong.join(', ')}`);
  }
  // A whole pass must also produce the checksum the corpus predicts.
  if (!fatal) {
    const want = messages.reduce((s, m) => s + expectedChecksum(m.expect), 0);
    try {
      const got = c.batch(messages.map((m) => c.prepare(m.bytes)));
      if (got !== want) problems.push(`batch checksum ${got}, want ${want}`);
    } catch (error) {
      problems.push(`batch threw ${reasonOf(error)}`);
      fatal = true;
    }
  }
  return {
    ok: problems.length === 0,
    fatal,
    summary: `${good}/${messages.length} messages read as written`,
    problems,
  };
}

interface Row {
  name: string;
  readonly kind: Kind;
  readonly input: string;
  contender?: AnyContender | undefined;
  unavailable?: string;
  check?: Check;
  rates?: number[];
  retained?: number | undefined;
  sinkOk?: boolean;
}

async function runParse(config: BenchConfig): Promise<void> {
  const messages = corpus;
  const print = (line = ''): void => console.log(line);

  print(
    `corpus: ${messages.length} messages, average ${Math.round(averageBytes(messages))} bytes ` +
      `(${messages.map((m) => `${m.name} ${m.bytes.length}`).join(', ')})`,
  );

  // Load every contender; a library that fails to load becomes a row that says so.
  const rows: Row[] = [];
  for (const loader of loaders()) {
    const row: Row = { name: loader.name, kind: loader.kind, input: loader.input };
    try {
      row.contender = await loader.load();
      row.name = row.contender.name;
    } catch (error) {
      row.unavailable = reasonOf(error);
    }
    rows.push(row);
  }

  // Check once, up front, that everyone reads the same fields from every message.
  print();
  print('field check: method/status, Call-ID, CSeq number, From tag, top Via branch');
  const checkRows: string[][] = [];
  const warnings: string[] = [];
  for (const row of rows) {
    const label = `${row.name} [${row.input}]`;
    if (row.contender === undefined) {
      checkRows.push([label, 'unavailable']);
      continue;
    }
    row.check = check(row.contender, messages);
    checkRows.push([
      label,
      row.check.ok ? `ok, ${row.check.summary}` : `WARNING: ${row.check.summary}`,
    ]);
    for (const p of row.check.problems) warnings.push(`WARNING ${label}: ${p}`);
    if (row.check.fatal) {
      row.unavailable = 'cannot parse the whole corpus';
      row.contender = undefined;
    }
  }
  print(
    formatTable(
      [
        { title: 'library', align: 'left' },
        { title: 'result', align: 'left' },
      ],
      checkRows,
    ),
  );
  for (const w of warnings) print(w);

  // Interleaved timing rounds.
  const live = rows.filter((r) => r.contender !== undefined);
  const timed: Timed[] = live.map((row) => {
    const c = row.contender as AnyContender;
    const inputs = messages.map((m) => c.prepare(m.bytes));
    return { name: row.name, unitsPerBatch: inputs.length, batch: () => c.batch(inputs) };
  });
  const progress = process.stderr.isTTY
    ? (round: number, total: number) => process.stderr.write(`\r  round ${round}/${total}`)
    : undefined;
  const results = interleavedRounds(timed, config, progress);
  if (progress !== undefined) process.stderr.write('\r\x1b[K');
  live.forEach((row, i) => {
    const r = results[i];
    row.rates = r.rates;
    const c = row.contender as AnyContender;
    const perBatch = c.batch(messages.map((m) => c.prepare(m.bytes)));
    row.sinkOk = r.sink === perBatch * r.batches;
  });

  // Retained heap, one library at a time, after timing so everything is warm.
  for (const row of live) {
    const c = row.contender as AnyContender;
    row.retained = retainedPerResult(
      config.retainCount,
      (i) => c.prepare(messages[i % messages.length].bytes),
      (input) => c.keep(input),
    );
  }

  // Within-round ratios against the fastest peer and the baseline.
  const rounds = config.rounds;
  const peers = live.filter((r) => r.kind === 'peer');
  const base = live.find((r) => r.kind === 'baseline');
  const fastestPeer = (round: number) =>
    peers.length === 0 ? Number.NaN : Math.max(...peers.map((p) => (p.rates as number[])[round]));
  const baselineRate = (round: number) =>
    base === undefined ? Number.NaN : (base.rates as number[])[round];
  const fastestCount = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    const f = fastestPeer(round);
    const p = peers.find((q) => (q.rates as number[])[round] === f);
    if (p !== undefined) fastestCount.set(p.name, (fastestCount.get(p.name) ?? 0) + 1);
  }

  const columns: Column[] = [
    { title: 'library', align: 'left' },
    { title: 'input', align: 'left' },
    { title: 'msgs/s', align: 'right' },
    { title: 'min..max', align: 'right' },
    { title: 'x fastest peer', align: 'right' },
    { title: 'x baseline', align: 'right' },
    { title: 'retained B/msg', align: 'right' },
  ];
  const tableRows = rows.map((row) => {
    if (row.rates === undefined) {
      return [row.name, row.input, 'unavailable', '-', '-', '-', '-'];
    }
    const rates = row.rates;
    const flag = row.check?.ok === false || row.sinkOk === false ? ' !' : '';
    return [
      row.name + flag,
      row.input,
      formatRate(median(rates)),
      `${formatRateShort(Math.min(...rates))}..${formatRateShort(Math.max(...rates))}`,
      formatRatio(median(perRoundRatios(rates, fastestPeer))),
      formatRatio(median(perRoundRatios(rates, baselineRate))),
      formatBytes(row.retained),
    ];
  });
  print();
  print(formatTable(columns, tableRows));

  // Notes.
  print();
  const notes: string[] = [];
  for (const row of rows) {
    if (row.unavailable !== undefined)
      notes.push(`${row.name} [${row.input}]: unavailable (${row.unavailable})`);
    if (row.sinkOk === false) {
      notes.push(`${row.name} [${row.input}]: WARNING checksum of timed work inconsistent`);
    }
  }
  const fastest = [...fastestCount.entries()].sort((a, b) => b[1] - a[1]);
  notes.push(
    `msgs/s is the median over ${rounds} interleaved rounds (min..max across them); the "x" ` +
      'columns are medians of ratios taken within each round' +
      (fastest.length > 0
        ? ` (fastest peer per round: ${fastest.map(([n, c]) => `${n} ${c}/${rounds}`).join(', ')})`
        : ''),
  );
  notes.push(
    'sip.js, jssip and sip are handed strings already decoded from UTF-8 outside the timed loop; ' +
      '@sipworks/message [Uint8Array] decodes the bytes itself inside it, as it would on UDP',
  );
  notes.push(
    '@sipworks/message parses on access: this work parses its start line, Call-ID, CSeq, From ' +
      'and top Via only; sip.js and jssip parse Via, From, To, Call-ID, CSeq, Contact, ' +
      'Record-Route... eagerly, sip every header it knows; "+validate" adds validateMessage(), ' +
      'which reads every header the stack depends on, as the stack does on receipt',
  );
  notes.push(
    'baseline: indexOf over a latin1 string for the blank line and each CRLF, counting lines',
  );
  notes.push(
    canCollect()
      ? `retained B/msg: growth of heapUsed + arrayBuffers after a full gc with ` +
          `${config.retainCount.toLocaleString('en-US')} parse results kept, divided by their number; ` +
          'the inputs (a fresh copy per message) exist before the first snapshot and are not counted; ' +
          'the baseline keeps nothing, so its figure is the noise floor (within ~16 B/msg shows ~0)'
      : 'retained B/msg: not measured, run node with --expose-gc',
  );
  if (rows.some((r) => r.check?.ok === false || r.sinkOk === false)) {
    notes.push('! marks a library whose field check or checksum failed');
  }
  for (const n of notes) print(`  * ${n}`);
  if (keepAliveToken() < 0) print('');
}

export const parseSection: Section = {
  name: 'parse',
  title: 'parse: messages per second and retained heap',
  async run(config) {
    console.log(heading(this.title));
    await runParse(config);
  },
};
