export {
  MemoryNetwork,
  MemoryTransport,
  type NetworkConditions,
  seeded,
} from '../memory-transport.ts';
export { VirtualClock } from './virtual-clock.ts';
