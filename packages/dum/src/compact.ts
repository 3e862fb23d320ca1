/**
 * A copy of `s` as one flat string. A string built by concatenation is a tree of its
 * parts (a rope), and one cut from a longer string can keep that whole string alive;
 * what a dialog holds for the whole of a call (its ids, its addresses, the keys of the
 * DUM's tables) is worth a compact copy, made once when the dialog is created.
 *
 * JSON's round trip is the portable way to get a fresh sequential string (it works in
 * browsers too); it costs about as much as copying the characters.
 */
export function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/** The content type of nearly every session description, one string for all. */
const SDP = 'application/sdp';

/** `type` itself, or the one shared string when it is `application/sdp`. */
export function sharedContentType(type: string): string {
  return type === SDP ? SDP : type;
}
