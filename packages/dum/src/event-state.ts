import { buildPidf, PIDF_CONTENT_TYPE } from './events/presence.ts';
import type { PublishedState } from './usages/server-publication.ts';

/** The state of a resource as a NOTIFY carries it: a body and its type. */
export interface EventState {
  body: Uint8Array | string;
  contentType: string;
}

/**
 * Compose the state a notifier sends for `resource` and `event` from every publication
 * the state agent holds for them (RFC 3903 §2: the event state compositor). Return
 * undefined for "no state": the subscribers then get a NOTIFY without a body.
 */
export type PublicationComposer = (
  resource: string,
  event: string,
  states: readonly PublishedState[],
) => EventState | undefined;

/**
 * The default compositor: the body of the most recently published (or modified) state.
 * With nothing published, `presence` composes a PIDF document with a `closed` tuple for
 * the presentity (RFC 3863 §4.1.4), every other event no state.
 */
export const latestPublication: PublicationComposer = (resource, event, states) => {
  let latest: PublishedState | undefined;
  for (const s of states)
    if (!latest || (s.modifiedAt ?? 0) >= (latest.modifiedAt ?? 0)) latest = s;
  if (latest) return { body: latest.body, contentType: latest.contentType };
  if (event === 'presence')
    return {
      body: buildPidf({
        entity: presentity(resource),
        tuples: [{ id: 'none', basic: 'closed' }],
      }),
      contentType: PIDF_CONTENT_TYPE,
    };
  return undefined;
};

/** `sip:alice@example.com` -> `pres:alice@example.com` (RFC 3863 §4.1.1). */
export function presentity(resource: string): string {
  return `pres:${resource.replace(/^[a-z][a-z0-9+.-]*:/i, '')}`;
}
