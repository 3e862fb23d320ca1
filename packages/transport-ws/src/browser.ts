/**
 * `@sipworks/transport-ws` in a browser build (package.json `exports`, condition
 * `browser`): the WebSocket client only; the listening `WsTransport` needs Node.js.
 */
export {
  type WebSocketConstructor,
  type WebSocketLike,
  type WebSocketLikeEventMap,
  WsClientTransport,
  type WsClientTransportOptions,
} from './client.ts';
export { SIP_SUBPROTOCOL } from './subprotocol.ts';
