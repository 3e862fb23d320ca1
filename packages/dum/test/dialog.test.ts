// The dialog state of RFC 3261 §12 as Dialog keeps it: the addresses as header text,
// parsed on each read, and the requests built from them (§12.2.1.1).
import { parseMessage, type SipRequest, Uri } from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import { Dialog } from '../src/dialog.ts';
import { DialogId, DialogSetId } from '../src/ids.ts';

const enc = new TextEncoder();

function invite(extra: string[] = []): SipRequest {
  return parseMessage(
    enc.encode(
      [
        'INVITE sip:bob@192.0.2.2 SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK.d1',
        'Max-Forwards: 70',
        'From: "Alice" <sip:alice@example.com>;tag=a1',
        'To: <sip:bob@example.com>',
        'Call-ID: dialog-test@example.com',
        'CSeq: 4 INVITE',
        'Contact: <sip:alice@192.0.2.1:5060;transport=udp>',
        ...extra,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    ),
  ) as SipRequest;
}

describe('Dialog (RFC 3261 §12)', () => {
  it('§12.1.1 the UAS side: addresses and route set read back as parsed values, fresh on each read', () => {
    const d = Dialog.asUas(
      invite(['Record-Route: <sip:p1.example.com;lr>', 'Record-Route: <sip:p2.example.com;lr>']),
      'b1',
      Dialog.contact('<sip:bob@192.0.2.2:5060>'),
    );
    expect(d.id.callId).toBe('dialog-test@example.com');
    expect(d.remoteUri.toString()).toBe('"Alice" <sip:alice@example.com>;tag=a1');
    expect(d.localUri.tag).toBe('b1');
    expect(d.localUri.uri.toString()).toBe('sip:bob@example.com');
    expect(d.remoteTarget.toString()).toBe('sip:alice@192.0.2.1:5060;transport=udp');
    expect(d.localContact.uri.toString()).toBe('sip:bob@192.0.2.2:5060');
    expect(d.routeSet.map(String)).toEqual(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    expect(d.remoteTarget).not.toBe(d.remoteTarget);
    expect(d.remoteSeq).toBe(4);
  });

  it('§12.2.1.1 requests go to the remote target through the route set; a setter changes it', () => {
    const d = Dialog.asUas(
      invite(['Record-Route: <sip:p1.example.com;lr>']),
      'b1',
      Dialog.contact('<sip:bob@192.0.2.2:5060>'),
    );
    const bye = d.makeRequest('BYE');
    expect(bye.uri.toString()).toBe('sip:alice@192.0.2.1:5060;transport=udp');
    expect(bye.headers('Route')).toEqual(['<sip:p1.example.com;lr>']);
    expect(bye.from.tag).toBe('b1');
    expect(bye.to.tag).toBe('a1');
    expect(bye.cseq.seq).toBe(1);
    expect(bye.contacts[0]?.uri.toString()).toBe('sip:bob@192.0.2.2:5060');
    d.remoteTarget = new Uri({ scheme: 'sip', user: 'alice', host: '198.51.100.9' });
    expect(d.makeRequest('INFO').uri.toString()).toBe('sip:alice@198.51.100.9');
  });

  it('§12.2.1.1 strict routing: the first route is the Request-URI, the remote target the last Route', () => {
    const d = Dialog.asUas(
      invite(['Record-Route: <sip:strict.example.com>', 'Record-Route: <sip:p2.example.com;lr>']),
      'b1',
      Dialog.contact('<sip:bob@192.0.2.2:5060>'),
    );
    const bye = d.makeRequest('BYE');
    expect(bye.uri.toString()).toBe('sip:strict.example.com');
    expect(bye.headers('Route')).toEqual([
      '<sip:p2.example.com;lr>',
      '<sip:alice@192.0.2.1:5060;transport=udp>',
    ]);
  });

  it('§12.2.2 a target refresh request updates the remote target', () => {
    const d = Dialog.asUas(invite(), 'b1', Dialog.contact('<sip:bob@192.0.2.2:5060>'));
    const reinvite = parseMessage(
      enc.encode(
        invite()
          .toString()
          .replace('CSeq: 4 INVITE', 'CSeq: 5 INVITE')
          .replace('sip:alice@192.0.2.1:5060;transport=udp', 'sip:alice@203.0.113.5:5070'),
      ),
    ) as SipRequest;
    expect(d.receiveRequest(reinvite, true)).toBeUndefined();
    expect(d.remoteTarget.toString()).toBe('sip:alice@203.0.113.5:5070');
  });

  it('§12 dialog and dialog set ids: Call-ID and tags read back from the one key they keep', () => {
    const id = new DialogId('a@b', 'l1', 'r1');
    expect([id.callId, id.localTag, id.remoteTag]).toEqual(['a@b', 'l1', 'r1']);
    expect(id.dialogSetId.key).toBe(new DialogSetId('a@b', 'l1').key);
    expect(id.compact().key).toBe(id.key);
    expect(id.compact().remoteTag).toBe('r1');
    expect(id.toString()).toBe('a@b;local=l1;remote=r1');
    const empty = new DialogId('c@d', 'l2', '');
    expect([empty.callId, empty.localTag, empty.remoteTag]).toEqual(['c@d', 'l2', '']);
    const set = new DialogSetId('a@b', 'l1').compact();
    expect([set.callId, set.localTag, set.toString()]).toEqual(['a@b', 'l1', 'a@b;local=l1']);
  });
});
