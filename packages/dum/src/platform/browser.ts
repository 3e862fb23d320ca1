/** The browser side of `#platform` (see `./node.ts`): no `node:crypto`. */
import type { NodeCrypto } from './types.ts';

export const nodeCrypto: NodeCrypto | undefined = undefined;
