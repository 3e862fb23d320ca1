/** The WebSocket subprotocol of RFC 7118 §4. */
export const SIP_SUBPROTOCOL = 'sip';
