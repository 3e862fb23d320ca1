export { corpus, FuzzSender, type FuzzTarget, Mutator } from './fuzz.ts';
export { UdpProbe } from './probe.ts';
export { type Listener, MAIN, ROOT, type ServeOptions, ServeProcess } from './serve-process.ts';
