export { CliError, EXIT, type ExitCode, UsageError } from './errors.ts';
export {
  formatTime,
  Ladder,
  type LadderMessage,
  type LadderOptions,
  labelOf,
  renderLadder,
} from './ladder.ts';
export { describeTransport, type ListenSpec, makeTransport, parseListen } from './listen.ts';
export { type CliOptions, parseCommandLine, USAGE } from './options.ts';
export {
  LINKTYPE_RAW,
  type PcapEndpoint,
  PcapWriter,
  pcapFileHeader,
  pcapRecord,
  udpPacket,
} from './pcap.ts';
export { pidf } from './presence.ts';
export { run } from './run.ts';
export { type Direction, makeAnswer, makeOffer, withDirection } from './sdp.ts';
export { configureServer, readUsers, type ServerSettings } from './serve.ts';
export { ladderMessage, type TraceMode, Wire, type WireOptions } from './wire.ts';
