/**
 * The pieces of the scale-out test (docs/scale-out.md): `sipworks serve` nodes as child
 * processes, the dispatcher list that names them to Kamailio, and Kamailio's view of
 * them (kamcmd dispatcher.list).
 */

export type { DispatcherTarget } from './dispatcher.ts';
export {
  DISPATCHER_CONFIG,
  DISPATCHER_MODULES,
  dispatcherTargets,
  writeDispatcherList,
} from './dispatcher.ts';
export type { ServeEvent, ServeNodeOptions } from './serve-node.ts';
export { ServeNode } from './serve-node.ts';
