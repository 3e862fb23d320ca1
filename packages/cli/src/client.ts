import type {
  ClientInviteSession,
  ClientPublication,
  ClientRegistration,
  ClientSubscription,
  UserProfile,
} from '@sipworks/dum';
import type { SipRequest, SipResponse, Uri } from '@sipworks/message';
import { EXIT, type ExitCode, UsageError } from './errors.ts';
import type { CliOptions } from './options.ts';
import type { Output } from './output.ts';
import { pidf } from './presence.ts';
import { makeAnswer, makeOffer } from './sdp.ts';
import { protocolOf, sipUri, startUa, type Ua, withTransport } from './ua.ts';
import { hostPort, ladderMessage } from './wire.ts';

/** What a client command ended with. */
interface Outcome {
  code: ExitCode;
  status?: number | undefined;
  reason?: string | undefined;
  /** What to tell the user when it failed. */
  hint?: string | undefined;
  extra?: Record<string, unknown> | undefined;
}

/** The first line of a response, as the wire had it. */
function statusLine(res: SipResponse): string {
  return `SIP/2.0 ${res.status} ${res.reason}`;
}

interface ClientContext {
  o: CliOptions;
  out: Output;
  ua: Ua;
  profile: UserProfile;
  target: Uri;
}

/** Run one client command; resolves with the exit status. */
export async function runClient(o: CliOptions, out: Output): Promise<ExitCode> {
  const [first, ...more] = o.args;
  const needs = (n: number, shape: string) => {
    if (o.args.length < n) throw new UsageError(`${o.command} needs ${shape}`);
  };
  let targetText: string;
  switch (o.command) {
    case 'options':
    case 'call':
      needs(1, `a URI: sipworks ${o.command} sip:user@host[:port]`);
      targetText = first as string;
      break;
    case 'message':
      needs(2, 'a URI and a text: sipworks message sip:bob@host "hello"');
      targetText = first as string;
      break;
    case 'register':
      needs(1, 'an address of record: sipworks register sip:alice@host --registrar sip:host');
      if (!o.registrar)
        throw new UsageError(
          'register needs --registrar URI (for example --registrar sip:127.0.0.1:5060)',
        );
      targetText = first as string;
      break;
    case 'subscribe':
      needs(1, 'a URI: sipworks subscribe sip:bob@host --event presence');
      if (!o.event)
        throw new UsageError('subscribe needs --event E (presence, message-summary, dialog...)');
      targetText = first as string;
      break;
    case 'publish':
      needs(1, 'a URI: sipworks publish sip:alice@host --event presence --status open');
      if ((o.event ?? 'presence') !== 'presence')
        throw new UsageError('publish builds a PIDF document: only --event presence is supported');
      if (!o.status) throw new UsageError('publish needs --status open|closed');
      targetText = first as string;
      break;
    case 'refer':
      needs(1, 'a URI: sipworks refer sip:bob@host --to sip:carol@host');
      if (!o.to)
        throw new UsageError(
          'refer needs --to URI, the address the recipient is asked to call (Refer-To)',
        );
      sipUri(o.to, '--to');
      targetText = first as string;
      break;
    default:
      throw new UsageError(`${o.command} is not a client command`);
  }
  if (o.command !== 'message' && more.length > 0)
    throw new UsageError(`unexpected argument '${more[0]}' after the URI`);
  if (o.command === 'message' && more.length > 1)
    throw new UsageError('give the text of the MESSAGE as one argument (quote it)');

  const parsed = sipUri(targetText, o.command === 'register' ? 'the AOR' : 'the URI');
  // An address of record names a user, not a route: --transport applies to the registrar.
  const target = o.command === 'register' ? parsed : withTransport(parsed, o.transport);
  const registrar = o.registrar
    ? withTransport(sipUri(o.registrar, '--registrar'), o.transport)
    : undefined;
  const proxy = o.proxy ? withTransport(sipUri(o.proxy, '--proxy'), o.transport) : undefined;
  const nextHop = o.command === 'register' ? (registrar as Uri) : (proxy ?? target);
  const need = [{ protocol: protocolOf(nextHop), host: nextHop.host }];
  const fallbackHost =
    need[0]?.host.startsWith('127.') || need[0]?.host === 'localhost' ? '127.0.0.1' : '0.0.0.0';
  const ua = await startUa(
    o,
    out,
    [{ protocol: 'udp', host: nextHop.host.includes(':') ? '::1' : fallbackHost, port: 0 }],
    need,
  );
  try {
    const aor =
      o.command === 'register'
        ? targetText
        : (o.from ??
          `sip:${o.user ?? 'sipworks'}@${target.host}${target.port ? `:${target.port}` : ''}`);
    const profile = ua.dum.makeUserProfile({
      aor,
      ...(o.command === 'register' && registrar
        ? { outboundProxy: registrar }
        : proxy
          ? { outboundProxy: proxy }
          : {}),
    });
    if (o.user !== undefined)
      profile.addCredentials({ realm: '', username: o.user, password: o.password ?? '' });
    const ctx: ClientContext = { o, out, ua, profile, target };
    if (out.json)
      ua.wire.watch((e) =>
        out.event(e.direction === 'send' ? 'sent' : 'received', {
          label: ladderMessage(e).label,
          protocol: e.protocol,
          peer: hostPort(e.remote),
        }),
      );
    const outcome = await withDeadline(ctx, commandFor(ctx));
    // Let what is still going finish: a CANCEL after a timeout, the answer to a BYE or to an
    // unsubscribe. Registrations and publications are left in place (they are the point).
    await settle(ctx.ua, outcome.code === EXIT.timeout);
    report(ctx, outcome);
    return outcome.code;
  } finally {
    ua.wire.stop();
    await ua.stack.stop().catch(() => {});
  }
}

function commandFor(ctx: ClientContext): Promise<Outcome> {
  switch (ctx.o.command) {
    case 'options':
      return options(ctx);
    case 'register':
      return register(ctx);
    case 'message':
      return message(ctx);
    case 'call':
      return call(ctx);
    case 'subscribe':
      return subscribe(ctx);
    case 'publish':
      return publish(ctx);
    case 'refer':
      return refer(ctx);
    default:
      throw new UsageError(`${ctx.o.command} is not a client command`);
  }
}

/** How long to wait for a CANCEL's, BYE's or unsubscribe's answer before exiting. */
const SETTLE_MS = 2000;

/**
 * End the invite sessions and subscriptions still alive (CANCEL before an answer, BYE
 * after, Expires: 0) when `endAll`, then wait, bounded, until the usages that ended are
 * gone (their last request answered).
 */
async function settle(ua: Ua, endAll: boolean): Promise<void> {
  const lingering = () =>
    ua.dum.handles
      .all()
      .filter((u) => /InviteSession|ClientSubscription/.test((u as { kind?: string }).kind ?? ''));
  if (endAll) for (const u of lingering()) (u as { end?: () => void }).end?.();
  const until = Date.now() + SETTLE_MS;
  while (lingering().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/** The command's outcome, or a timeout outcome after `--timeout` seconds. */
function withDeadline(ctx: ClientContext, work: Promise<Outcome>): Promise<Outcome> {
  // A call holds for --duration after the answer, a subscription lives --duration: the
  // deadline applies to getting the answer, so those commands stretch it.
  const extra =
    ctx.o.command === 'call' || ctx.o.command === 'subscribe' ? (ctx.o.duration ?? 0) : 0;
  const ms = (ctx.o.timeout + extra) * 1000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<Outcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          code: EXIT.timeout,
          hint:
            ctx.o.command === 'refer'
              ? `no final NOTIFY within ${ctx.o.timeout} s from ${ctx.target}: the referred call ` +
                'has not ended yet (or nothing answered the REFER); raise --timeout, or check with --trace'
              : `no final response within ${ctx.o.timeout} s from ${ctx.target}: check that a SIP server ` +
                'listens at that address and port over that transport (--transport), or raise --timeout',
        }),
      ms,
    );
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** A final response as an outcome: 2xx ok, a network failure 1, one made locally 3. */
function fromResponse(
  ctx: ClientContext,
  res: SipResponse,
  extra?: Record<string, unknown>,
): Outcome {
  if (res.status < 300) return { code: EXIT.ok, status: res.status, reason: res.reason, extra };
  if (!ctx.ua.wire.fromNetwork(res)) {
    const tls = /certificate|unknown CA|hostname mismatch|TLS handshake/i.test(res.reason);
    return {
      code: EXIT.timeout,
      status: res.status,
      reason: res.reason,
      hint: tls
        ? `${res.reason}: the server's TLS certificate was not accepted; give the server a ` +
          'certificate a trusted CA issued for that name, trust its CA with --ca FILE, or pass ' +
          '--insecure to skip the check'
        : `${res.reason}: no answer from ${ctx.target}; check the address, the port and the ` +
          'transport (--transport udp|tcp|tls|ws|wss), and that a server is running there',
      extra,
    };
  }
  const auth = res.status === 401 || res.status === 407;
  return {
    code: EXIT.failure,
    status: res.status,
    reason: res.reason,
    hint: auth
      ? ctx.o.user
        ? 'the credentials were refused: check --user and --password'
        : 'the server asks for credentials: give --user NAME --password PW'
      : undefined,
    extra,
  };
}

function report(ctx: ClientContext, r: Outcome): void {
  const { out, o } = ctx;
  out.event('result', {
    command: o.command,
    target: ctx.target.toString(),
    ok: r.code === EXIT.ok,
    exitCode: r.code,
    ...(r.status !== undefined ? { status: r.status, reason: r.reason } : {}),
    ...(r.extra ?? {}),
    elapsedMs: out.elapsed(),
  });
  if (r.status !== undefined && r.code !== EXIT.timeout)
    out.line(`SIP/2.0 ${r.status} ${r.reason} (${out.elapsed()} ms)`);
  if (r.code !== EXIT.ok && r.hint) out.error(r.hint);
  else if (r.code === EXIT.failure) out.error(`${o.command} failed: ${r.status} ${r.reason}`);
}

function responseEvent(ctx: ClientContext, res: SipResponse): void {
  ctx.out.event(
    'response',
    { status: res.status, reason: res.reason, method: res.cseq.method },
    undefined,
  );
}

async function options(ctx: ClientContext): Promise<Outcome> {
  const { dum } = ctx.ua;
  return new Promise((resolve) => {
    dum.addOutOfDialogHandler('OPTIONS', {
      onSuccess: (_h, res) => {
        responseEvent(ctx, res);
        const allow = res.headers('Allow').join(', ') || undefined;
        const ua = res.header('Server') ?? res.header('User-Agent');
        if (allow) ctx.out.line(`Allow: ${allow}`);
        if (ua) ctx.out.line(`Server: ${ua}`);
        resolve(fromResponse(ctx, res, { allow, server: ua }));
      },
      onFailure: (_h, res) => resolve(fromResponse(ctx, res)),
    });
    dum.send(dum.makeOutOfDialogRequest(ctx.target, 'OPTIONS', ctx.profile));
  });
}

async function register(ctx: ClientContext): Promise<Outcome> {
  const { dum } = ctx.ua;
  const { o } = ctx;
  return new Promise((resolve) => {
    dum.setClientRegistrationHandler({
      onSuccess: (h, res) => {
        responseEvent(ctx, res);
        const r = h.get();
        const bindings = r.allContacts.map((c) => c.toString());
        for (const b of bindings) ctx.out.line(`Contact: ${b}`);
        ctx.out.event('registered', { expires: r.expires, contacts: bindings });
        resolve(fromResponse(ctx, res, { expires: r.expires, contacts: bindings }));
      },
      onRemoved: (_h, res) => {
        responseEvent(ctx, res);
        ctx.out.event('unregistered', {}, 'bindings removed');
        resolve(fromResponse(ctx, res));
      },
      onFailure: (_h, res) => resolve(fromResponse(ctx, res)),
      onRequestRetry: () => -1,
    });
    const unregister = o.unregister;
    const req = dum.makeRegistration(ctx.target, ctx.profile, {
      expires: unregister ? 0 : (o.expires ?? 3600),
      ...(o.contact ? { contact: o.contact.includes('<') ? o.contact : `<${o.contact}>` } : {}),
    });
    if (unregister && !o.contact) req.setHeader('Contact', '*');
    dum.send<ClientRegistration>(req);
  });
}

async function message(ctx: ClientContext): Promise<Outcome> {
  const { dum } = ctx.ua;
  const text = ctx.o.args[1] ?? '';
  return new Promise((resolve) => {
    dum.setClientPagerMessageHandler({
      onSuccess: (_h, res) => resolve(fromResponse(ctx, res)),
      onFailure: (_h, res) => resolve(fromResponse(ctx, res)),
    });
    dum.makePagerMessage(ctx.target, ctx.profile).get().page(text, 'text/plain');
  });
}

async function call(ctx: ClientContext): Promise<Outcome> {
  const { dum, transports } = ctx.ua;
  const duration = ctx.o.duration ?? 2;
  const local = transports[0]?.local.address ?? '127.0.0.1';
  const offer = makeOffer(offerAddress(local));
  const times: Record<string, number> = {};
  let final: SipResponse | undefined;
  let answer: string | undefined;
  return new Promise((resolve) => {
    let hold: ReturnType<typeof setTimeout> | undefined;
    dum.setInviteSessionHandler({
      onProvisional: (_h, res) => {
        times[`t${res.status}`] ??= ctx.out.elapsed();
        responseEvent(ctx, res);
        ctx.out.line(statusLine(res));
      },
      onEarlyMedia: (_h, res) => ctx.out.event('early-media', { status: res.status }),
      // An offer from the peer in a re-INVITE or UPDATE (a refresh of the same session is
      // answered by the DUM itself): answer it, mirroring its direction (RFC 3264 §6).
      onOffer: (h, _m, body) => {
        const s = h.get();
        if (!s.isConnected) return;
        try {
          s.provideAnswer(makeAnswer(new TextDecoder().decode(body), offerAddress(local)));
        } catch {
          s.reject(488);
        }
      },
      onAnswer: (_h, _m, body) => {
        answer = new TextDecoder().decode(body);
      },
      onConnected: (h, m) => {
        if (!(m as SipRequest).isRequest) final = m as SipResponse;
        times.answered = ctx.out.elapsed();
        const st = h.get().sessionTimerState;
        const timer = st.interval > 0 ? st : undefined;
        ctx.out.event(
          'connected',
          { status: final?.status, reason: final?.reason, answer, sessionTimer: timer },
          `connected (${final ? `${final.status} ${final.reason}` : 'answered'}); holding ${duration} s` +
            (timer
              ? `; session timer ${timer.interval} s, refreshed by ${timer.refresher === 'local' ? 'us' : 'the peer'}`
              : ''),
        );
        hold = setTimeout(() => {
          if (h.isValid()) h.get().end();
        }, duration * 1000);
      },
      onFailure: (_h, res) => {
        final = res;
      },
      onTerminated: (_h, reason, m) => {
        if (hold) clearTimeout(hold);
        const res = final ?? (m && !(m as SipRequest).isRequest ? (m as SipResponse) : undefined);
        ctx.out.event('terminated', { reason }, `call ended: ${reason}`);
        const extra = { endReason: reason, ...times };
        if (times.answered !== undefined)
          resolve({
            code: EXIT.ok,
            status: res?.status ?? 200,
            reason: res?.reason ?? 'OK',
            extra,
          });
        else if (res) resolve(fromResponse(ctx, res, extra));
        else
          resolve({
            code: EXIT.timeout,
            hint: `the call ended (${reason}) without an answer`,
            extra,
          });
      },
    });
    dum.send<ClientInviteSession>(dum.makeInviteSession(ctx.target, ctx.profile, { body: offer }));
  });
}

/** The address to put in an SDP body: a wildcard listener means loopback here. */
function offerAddress(local: string): string {
  return local === '0.0.0.0' || local === '::' ? '127.0.0.1' : local;
}

/**
 * `refer URI --to URI`: a REFER outside a dialog (RFC 3515 §2.4.1); prints the sipfrag
 * status line of each NOTIFY (§2.4.5). Succeeds when the last one is a final 2xx.
 */
async function refer(ctx: ClientContext): Promise<Outcome> {
  const { dum } = ctx.ua;
  const referTo = sipUri(ctx.o.to as string, '--to');
  let last: { status: number; reason: string; final: boolean } | undefined;
  let accepted: SipResponse | undefined;
  let notifies = 0;
  return new Promise((resolve) => {
    const done = () => {
      const extra = { notifies, referTo: referTo.toString(), sipfrag: last };
      if (last?.final && last.status < 300)
        resolve({ code: EXIT.ok, status: last.status, reason: last.reason, extra });
      else if (last?.final)
        resolve({
          code: EXIT.failure,
          status: last.status,
          reason: last.reason,
          hint: `the referred call to ${referTo} failed: ${last.status} ${last.reason}`,
          extra,
        });
      else if (accepted)
        resolve({
          code: EXIT.failure,
          status: accepted.status,
          reason: accepted.reason,
          hint: `the REFER was accepted (${accepted.status}) but no final NOTIFY came`,
          extra,
        });
      else resolve({ code: EXIT.timeout, hint: `the REFER to ${ctx.target} got no answer`, extra });
    };
    dum.addClientSubscriptionHandler('refer', {
      onReferAccepted: (_h, res) => {
        accepted = res;
        responseEvent(ctx, res);
        ctx.out.line(statusLine(res));
      },
      onReferRejected: (_h, res) => resolve(fromResponse(ctx, res)),
      onReferProgress: (_h, status, notify) => {
        notifies++;
        const state = notify.header('Subscription-State') ?? '';
        if (status) last = { status: status.status, reason: status.reason, final: status.final };
        const frag = status ? `SIP/2.0 ${status.status} ${status.reason}` : 'unreadable sipfrag';
        ctx.out.event(
          'notify',
          {
            state,
            ...(status
              ? { status: status.status, reason: status.reason, final: status.final }
              : {}),
          },
          `NOTIFY ${frag} (${state})`,
        );
      },
      onTerminated: () => done(),
      onRequestRetry: () => -1,
    });
    dum.send<ClientSubscription>(dum.makeRefer(ctx.target, referTo, ctx.profile));
  });
}

async function subscribe(ctx: ClientContext): Promise<Outcome> {
  const { dum } = ctx.ua;
  const event = ctx.o.event as string;
  const pkg = event.split(';')[0]?.trim().toLowerCase() ?? event;
  let notifies = 0;
  let lastFinal: SipResponse | undefined;
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const show = (kind: string) => (_h: unknown, notify: SipRequest) => {
      notifies++;
      const body = new TextDecoder().decode(notify.body);
      const state = notify.header('Subscription-State') ?? kind;
      ctx.out.event(
        'notify',
        { state, contentType: notify.header('Content-Type'), body },
        `NOTIFY ${state}${body ? `\n${body.trimEnd()}` : ''}`,
      );
    };
    dum.addClientSubscriptionHandler(pkg, {
      onUpdatePending: show('pending'),
      onUpdateActive: (h, n) => {
        show('active')(h, n);
        if (timer === undefined && ctx.o.duration !== undefined)
          timer = setTimeout(() => h.isValid() && h.get().end(), ctx.o.duration * 1000);
      },
      onUpdateExtension: show('extension'),
      onTerminated: (_h, notify) => {
        if (timer) clearTimeout(timer);
        if (notify) show('terminated')(_h, notify);
        if (notifies > 0)
          resolve({
            code: EXIT.ok,
            status: lastFinal?.status ?? 200,
            reason: lastFinal?.reason ?? 'OK',
            extra: { notifies },
          });
        else if (lastFinal) resolve(fromResponse(ctx, lastFinal, { notifies }));
        else
          resolve({
            code: EXIT.timeout,
            hint: `the subscription to ${ctx.target} got no answer`,
            extra: { notifies },
          });
      },
      onRequestRetry: () => -1,
    });
    const req = dum.makeSubscription(ctx.target, event, ctx.profile, {
      expires: ctx.o.expires ?? 600,
    });
    // The SUBSCRIBE's final response, for the exit status (the handler is not given it).
    watchFinal(ctx, req.callId, 'SUBSCRIBE', (res) => {
      // The last one counts: a 401/407 is followed by the retry's answer.
      lastFinal = res;
      responseEvent(ctx, res);
    });
    if (ctx.o.duration === undefined)
      process.once('SIGINT', () => {
        for (const u of dum.handles.all()) (u as { end?: () => void }).end?.();
      });
    dum.send<ClientSubscription>(req);
  });
}

/** Call `fn` with each final response to `method` in dialog set `callId` that arrives. */
function watchFinal(
  ctx: ClientContext,
  callId: string,
  method: string,
  fn: (res: SipResponse) => void,
): void {
  ctx.ua.wire.watch((e) => {
    if (e.direction !== 'receive' || e.message.isRequest) return;
    const res = e.message as SipResponse;
    if (res.status >= 200 && res.callId === callId && res.cseq.method === method) fn(res);
  });
}

async function publish(ctx: ClientContext): Promise<Outcome> {
  const { dum } = ctx.ua;
  const entity = ctx.target.toString();
  const body = pidf(entity, ctx.o.status as 'open' | 'closed');
  return new Promise((resolve) => {
    dum.addClientPublicationHandler('presence', {
      onSuccess: (h, res) => {
        const etag = h.get().etag;
        ctx.out.line(`SIP-ETag: ${etag}`);
        resolve(fromResponse(ctx, res, { etag, expires: h.get().expires }));
      },
      onFailure: (_h, res) => resolve(fromResponse(ctx, res)),
    });
    dum.send<ClientPublication>(
      dum.makePublication(ctx.target, 'presence', ctx.profile, body, 'application/pidf+xml', {
        expires: ctx.o.expires ?? 3600,
      }),
    );
  });
}
