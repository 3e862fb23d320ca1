import { element, elements, escapeXml, textOf } from './xml.ts';

/** The MIME type of a dialog-info document (RFC 4235 §4). */
export const DIALOG_INFO_CONTENT_TYPE = 'application/dialog-info+xml';

/** The states of a dialog as RFC 4235 §3.7.1 names them. */
export type DialogInfoState = 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';

const STATES: readonly string[] = ['trying', 'proceeding', 'early', 'confirmed', 'terminated'];

/** One side of a dialog (RFC 4235 §4.1.6): the identity (address of record) and the target (Contact). */
export interface DialogParticipant {
  identity?: string;
  displayName?: string;
  target?: string;
}

/** One `dialog` element (RFC 4235 §4.1). */
export interface DialogInfoDialog {
  id: string;
  callId?: string;
  localTag?: string;
  remoteTag?: string;
  /** Whether the entity sent the INVITE (`initiator`) or received it (`recipient`). */
  direction?: 'initiator' | 'recipient';
  state: DialogInfoState;
  /** Why it is in this state (RFC 4235 §4.1.2: cancelled, rejected, replaced, local-bye, remote-bye, error, timeout). */
  event?: string;
  /** The response code that caused the state, when one did. */
  code?: number;
  /** Seconds the dialog has lasted (RFC 4235 §4.1.5). */
  duration?: number;
  local?: DialogParticipant;
  remote?: DialogParticipant;
}

/** A dialog-info document (RFC 4235 §4.1). */
export interface DialogInfo {
  /** Incremented by one for each document sent to one subscriber (§4.1). */
  version: number;
  state: 'full' | 'partial';
  /** The address of record whose dialogs these are. */
  entity: string;
  dialogs: DialogInfoDialog[];
}

/** Write a dialog-info document (RFC 4235 §4.1). */
export function buildDialogInfo(info: DialogInfo): string {
  let x = '<?xml version="1.0" encoding="UTF-8"?>\n';
  x +=
    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${info.version}"` +
    ` state="${info.state}" entity="${escapeXml(info.entity)}">\n`;
  for (const d of info.dialogs) {
    x += `  <dialog id="${escapeXml(d.id)}"`;
    if (d.callId !== undefined) x += ` call-id="${escapeXml(d.callId)}"`;
    if (d.localTag !== undefined) x += ` local-tag="${escapeXml(d.localTag)}"`;
    if (d.remoteTag !== undefined) x += ` remote-tag="${escapeXml(d.remoteTag)}"`;
    if (d.direction !== undefined) x += ` direction="${d.direction}"`;
    x += '>\n    <state';
    if (d.event !== undefined) x += ` event="${escapeXml(d.event)}"`;
    if (d.code !== undefined) x += ` code="${d.code}"`;
    x += `>${d.state}</state>\n`;
    if (d.duration !== undefined) x += `    <duration>${Math.floor(d.duration)}</duration>\n`;
    if (d.local) x += participant('local', d.local);
    if (d.remote) x += participant('remote', d.remote);
    x += '  </dialog>\n';
  }
  x += '</dialog-info>\n';
  return x;
}

function participant(tag: 'local' | 'remote', p: DialogParticipant): string {
  let x = `    <${tag}>\n`;
  if (p.identity !== undefined) {
    const dn = p.displayName !== undefined ? ` display="${escapeXml(p.displayName)}"` : '';
    x += `      <identity${dn}>${escapeXml(p.identity)}</identity>\n`;
  }
  if (p.target !== undefined) x += `      <target uri="${escapeXml(p.target)}"/>\n`;
  x += `    </${tag}>\n`;
  return x;
}

/**
 * Read a dialog-info document: version, state, entity and each dialog with its ids,
 * direction, state (with event and code), duration and participants. Returns undefined
 * without a `dialog-info` element; a dialog with an unknown state is left out. Never
 * throws on malformed input.
 */
export function parseDialogInfo(xml: string | Uint8Array): DialogInfo | undefined {
  const text = typeof xml === 'string' ? xml : new TextDecoder().decode(xml);
  const root = element(text, 'dialog-info');
  if (!root) return undefined;
  const version = Number(root.attrs.version);
  const info: DialogInfo = {
    version: Number.isInteger(version) && version >= 0 ? version : 0,
    state: root.attrs.state === 'partial' ? 'partial' : 'full',
    entity: root.attrs.entity ?? '',
    dialogs: [],
  };
  for (const d of elements(root.inner, 'dialog')) {
    const st = element(d.inner, 'state');
    const state = textOf(d.inner, 'state')?.toLowerCase() ?? '';
    if (!st || !STATES.includes(state)) continue;
    const out: DialogInfoDialog = { id: d.attrs.id ?? '', state: state as DialogInfoState };
    if (d.attrs['call-id'] !== undefined) out.callId = d.attrs['call-id'];
    if (d.attrs['local-tag'] !== undefined) out.localTag = d.attrs['local-tag'];
    if (d.attrs['remote-tag'] !== undefined) out.remoteTag = d.attrs['remote-tag'];
    const dir = d.attrs.direction;
    if (dir === 'initiator' || dir === 'recipient') out.direction = dir;
    if (st.attrs.event !== undefined) out.event = st.attrs.event;
    const code = Number(st.attrs.code);
    if (st.attrs.code !== undefined && Number.isInteger(code)) out.code = code;
    const duration = Number(textOf(d.inner, 'duration'));
    if (textOf(d.inner, 'duration') !== undefined && Number.isFinite(duration))
      out.duration = duration;
    for (const side of ['local', 'remote'] as const) {
      const e = element(d.inner, side);
      if (!e) continue;
      const p: DialogParticipant = {};
      const id = element(e.inner, 'identity');
      if (id) {
        p.identity = textOf(e.inner, 'identity') ?? '';
        if (id.attrs.display !== undefined) p.displayName = id.attrs.display;
      }
      const target = element(e.inner, 'target');
      if (target?.attrs.uri !== undefined) p.target = target.attrs.uri;
      out[side] = p;
    }
    info.dialogs.push(out);
  }
  return info;
}
