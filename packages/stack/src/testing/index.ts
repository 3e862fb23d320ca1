export {
  MemoryNetwork,
  MemoryTransport,
  type NetworkConditions,
  seeded,
} from '../memory-transport.ts';
export { answerAll, sendAndWait, waitFor } from './helpers.ts';
export { ScriptedPeer, type ScriptStep } from './scripted-peer.ts';
export { VirtualClock } from './virtual-clock.ts';
