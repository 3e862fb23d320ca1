// A registrar (RFC 3261 §10.3) on UDP, bindings in memory: `tsx registrar.ts [HOST:PORT]`.
import { DialogUsageManager } from '@sipworks/dum';
import { SipStack } from '@sipworks/stack';
import { UdpTransport } from '@sipworks/transport-udp';

const [host = '127.0.0.1', port = '5060'] = (process.argv[2] ?? '').split(':').filter(Boolean);
const stack = new SipStack();
const udp = new UdpTransport({ address: host, port: Number(port) });
await stack.addTransport(udp);
await stack.start();
const dum = new DialogUsageManager({ stack });
dum.setServerRegistrationHandler({
  onAdd: (h, req) => {
    console.log(`registered ${req.to.uri} at ${req.contacts.map((c) => c.uri).join(', ')}`);
    h.get().accept();
  },
  onRemove: (h, req) => {
    console.log(`unregistered ${req.to.uri}`);
    h.get().accept();
  },
});
console.log(`registrar listening on udp:${udp.local.address}:${udp.local.port}`);
const stop = () => dum.shutdown().then(() => stack.stop());
process.once('SIGINT', stop).once('SIGTERM', stop);
