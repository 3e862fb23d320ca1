// A user agent: registers AOR at REGISTRAR, prints the MESSAGEs it gets (RFC 3428) and
// unregisters on Ctrl-C. `tsx user-agent.ts sip:alice@127.0.0.1 sip:127.0.0.1:5060`
import { type ClientRegistration, DialogUsageManager } from '@sipworks/dum';
import { SipStack } from '@sipworks/stack';
import { UdpTransport } from '@sipworks/transport-udp';

const [aor = 'sip:alice@127.0.0.1', registrar = 'sip:127.0.0.1:5060'] = process.argv.slice(2);
const stack = new SipStack();
await stack.addTransport(new UdpTransport({ address: '127.0.0.1', port: 0 }));
await stack.start();
const dum = new DialogUsageManager({ stack });
const me = dum.makeUserProfile({ aor, outboundProxy: registrar });
dum.setServerPagerMessageHandler({
  onMessageArrived: (h, msg) => {
    console.log(`MESSAGE from ${msg.from.uri}: ${msg.bodyText}`);
    h.get().accept();
  },
});
dum.setClientRegistrationHandler({
  onSuccess: (h) => console.log(`registered ${aor} at ${h.get().myContacts.join(', ')}`),
  onRemoved: () => void stack.stop(),
  onFailure: (_h, res) => console.error(`not registered: ${res.status} ${res.reason}`),
});
const reg = dum.send<ClientRegistration>(dum.makeRegistration(undefined, me, { expires: 600 }));
process.once('SIGINT', () => reg.get().removeMyBindings());
process.once('SIGTERM', () => reg.get().removeMyBindings());
