/**
 * The softphone page of `sipworks serve --web`: register, presence, MESSAGE, audio calls
 * and a live ladder, on `@sipworks/dum` in the browser over `WsClientTransport`, with
 * `@sipworks/webrtc` for the media.
 *
 * For automation the page keeps its state in `document.body.dataset` (`registration`:
 * `registered` | `unregistered`; `call`: `idle` | `ringing` | `connected` | `ended`),
 * exposes `window.sipworks` (its `peerConnections`, received `messages`, `presence`,
 * `ladder`), and reads URL parameters: `user`, `password` (register at once), `call` (a
 * user to call once registered) and `answer=auto`.
 */
import {
  type ClientPublication,
  type ClientRegistration,
  type ClientSubscription,
  DialogUsageManager,
  type Handle,
  type UserProfile,
} from '@sipworks/dum';
import type { SipRequest, SipResponse } from '@sipworks/message';
import { CHANNELS, channel, SipStack, type TransportMessageEvent } from '@sipworks/stack';
import { WsClientTransport } from '@sipworks/transport-ws';
import { type PeerConnectionLike, type WebRtcCall, WebRtcCalls } from '@sipworks/webrtc';

/** `/config.json`, as `packages/cli/src/web.ts` writes it. */
interface WebConfig {
  ws: { secure: boolean; port: number; path: string };
  proxy: { host: string; port: number };
  realm: string;
  users: string[];
}

interface LadderEntry {
  time: number;
  direction: 'send' | 'receive';
  line: string;
  text: string;
}

interface ChatEntry {
  direction: 'in' | 'out';
  peer: string;
  text: string;
  status?: number;
}

/** What automation reads (`window.sipworks`). */
const api = {
  peerConnections: [] as RTCPeerConnection[],
  messages: [] as ChatEntry[],
  presence: {} as Record<string, 'open' | 'closed'>,
  ladder: [] as LadderEntry[],
  errors: [] as string[],
  /** The user's call handling, once registered. */
  calls: undefined as WebRtcCalls | undefined,
  /** Send a MESSAGE to a user (as the form does). */
  sendMessage: (to: string, text: string): void => session?.sendMessage(to, text),
  /** Call a user (as the buddy list's Call button does). */
  call: (to: string): Promise<void> => session?.call(to) ?? Promise.resolve(),
  hangup: (): void => currentCall?.hangup(),
};
(window as unknown as { sipworks: typeof api }).sipworks = api;

const MAX_LADDER = 300;
const params = new URLSearchParams(location.search);
const autoAnswer = params.get('answer') === 'auto';
const dataset = document.body.dataset;
dataset.registration = 'unregistered';
dataset.call = 'idle';

const el = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page lacks #${id}`);
  return e as T;
};

/** Where the other party is heard (made here: a live call has no caption track). */
const remoteAudio = document.createElement('audio');
remoteAudio.autoplay = true;
document.body.append(remoteAudio);

let config: WebConfig | undefined;
let session: Session | undefined;
let currentCall: WebRtcCall | undefined;

function showError(text: string): void {
  api.errors.push(text);
  el('errors').textContent = text;
}

function status(text: string): void {
  el('status').textContent = text;
}

/** The PIDF document (RFC 3863) of one tuple with a basic status. */
function pidf(entity: string, basic: 'open' | 'closed'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">
  <tuple id="page"><status><basic>${basic}</basic></status></tuple>
</presence>
`;
}

/** One registered user: its stack, DUM, registration, presence and calls. */
class Session {
  readonly user: string;
  readonly domain = location.hostname;
  private readonly stack: SipStack;
  private readonly dum: DialogUsageManager;
  private readonly profile: UserProfile;
  private readonly calls: WebRtcCalls;
  private registration: Handle<ClientRegistration> | undefined;
  private publication: Handle<ClientPublication> | undefined;
  private readonly subscriptions: Handle<ClientSubscription>[] = [];
  private readonly unsubscribe: (() => void)[] = [];

  private constructor(stack: SipStack, cfg: WebConfig, user: string, password: string) {
    this.user = user;
    this.stack = stack;
    this.dum = new DialogUsageManager({ stack });
    const scheme = cfg.ws.secure ? 'wss' : 'ws';
    this.profile = this.dum.makeUserProfile({
      aor: `<sip:${user}@${this.domain}>`,
      // The WebSocket server, by address: every request goes to it (RFC 7118 §5.2).
      outboundProxy: `sip:${cfg.proxy.host}:${cfg.proxy.port};transport=${scheme};lr`,
    });
    this.profile.addCredentials({ realm: cfg.realm, username: user, password });
    this.calls = new WebRtcCalls(this.dum, {
      createPeerConnection: () => this.peerConnection(),
      onIncoming: (call) => {
        currentCall = call;
        if (autoAnswer) this.answer(call);
        renderCall();
      },
      onChange: (call) => {
        if (call === currentCall || call.state !== 'ended') currentCall = call;
        renderCall();
      },
      iceGatheringTimeoutMs: 3000,
    });
    api.calls = this.calls;
    this.wire();
  }

  /** Connect to the server and register; resolves once the REGISTER is sent. */
  static async start(cfg: WebConfig, user: string, password: string): Promise<Session> {
    const scheme = cfg.ws.secure ? 'wss' : 'ws';
    const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
    const stack = new SipStack();
    let changed = (_up: boolean): void => {};
    await stack.addTransport(
      new WsClientTransport({
        url: `${scheme}://${host}:${cfg.ws.port}${cfg.ws.path}`,
        onConnectionChange: (up) => changed(up),
      }),
    );
    await stack.start();
    const s = new Session(stack, cfg, user, password);
    changed = (up) => s.connectionChanged(up);
    s.register();
    return s;
  }

  private wire(): void {
    const ladder = (e: unknown) => addLadder(e as TransportMessageEvent);
    for (const name of [CHANNELS.send, CHANNELS.receive]) {
      const c = channel(name);
      c.subscribe(ladder);
      this.unsubscribe.push(() => c.unsubscribe(ladder));
    }
    this.dum.setClientRegistrationHandler({
      onSuccess: () => {
        const first = !this.isOnline;
        this.isOnline = true;
        dataset.registration = 'registered';
        el('whoami').textContent = `${this.user}@${this.domain}`;
        status(`Registered as sip:${this.user}@${this.domain}.`);
        renderControls();
        if (first) this.online();
      },
      onRemoved: () => {
        dataset.registration = 'unregistered';
        status('Unregistered.');
        renderControls();
      },
      onFailure: (_h, res) => {
        dataset.registration = 'unregistered';
        showError(`registration failed: ${res.status} ${res.reason}`);
        renderControls();
      },
    });
    this.dum.setServerPagerMessageHandler({
      onMessageArrived: (h, msg) => {
        const entry: ChatEntry = {
          direction: 'in',
          peer: msg.from.uri.user ?? msg.from.uri.toString(),
          text: new TextDecoder().decode(msg.body),
        };
        api.messages.push(entry);
        renderMessage(entry);
        h.get().accept();
      },
    });
    this.dum.setClientPagerMessageHandler({
      onSuccess: (h, res) => this.delivered(h.id, res),
      onFailure: (h, res) => this.delivered(h.id, res),
    });
    this.dum.addClientPublicationHandler('presence', {
      onFailure: (_h, res) => showError(`presence not published: ${res.status} ${res.reason}`),
    });
    this.dum.addClientSubscriptionHandler('presence', {
      onUpdateActive: (_h, notify) => this.presence(notify),
      onUpdatePending: (_h, notify) => this.presence(notify),
      onTerminated: () => {},
      onRequestRetry: (_h, retryAfter) => (retryAfter >= 0 ? retryAfter : 30),
    });
  }

  private isOnline = false;

  /**
   * The WebSocket connection was lost (the server cannot reach us) or reopened: register
   * again over the new connection, which the registrar then routes our requests to.
   */
  connectionChanged(up: boolean): void {
    if (!up) {
      dataset.registration = 'unregistered';
      status('Connection to the server lost; reconnecting...');
      renderControls();
      return;
    }
    if (this.registration?.isValid()) {
      status('Reconnected; registering again...');
      this.registration.get().refresh();
    }
  }

  private register(): void {
    this.registration = this.dum.send<ClientRegistration>(
      this.dum.makeRegistration(undefined, this.profile, { expires: 300 }),
    );
    status('Registering...');
  }

  /** Registered: publish our presence, watch the others', and place the call asked for. */
  private online(): void {
    const aor = `sip:${this.user}@${this.domain}`;
    this.publication = this.dum.send<ClientPublication>(
      this.dum.makePublication(
        aor,
        'presence',
        this.profile,
        pidf(aor, 'open'),
        'application/pidf+xml',
        {
          expires: 300,
        },
      ),
    );
    const buddies = (params.get('buddies')?.split(',') ?? config?.users ?? []).filter(
      (u) => u && u !== this.user,
    );
    for (const b of buddies) {
      api.presence[b] = 'closed';
      this.subscriptions.push(
        this.dum.send<ClientSubscription>(
          this.dum.makeSubscription(`sip:${b}@${this.domain}`, 'presence', this.profile, {
            expires: 300,
          }),
        ),
      );
    }
    renderBuddies();
    const target = params.get('call');
    if (target) void this.callWhenOnline(target);
  }

  /** Call `user` once it is online (presence open), or after 10 s regardless. */
  private async callWhenOnline(user: string): Promise<void> {
    for (let i = 0; i < 100 && api.presence[user] !== 'open'; i++)
      await new Promise((r) => setTimeout(r, 100));
    await this.call(user);
  }

  private presence(notify: SipRequest): void {
    const user = notify.from.uri.user;
    if (!user) return;
    const text = new TextDecoder().decode(notify.body);
    const basic = /<basic>\s*(open|closed)\s*<\/basic>/i.exec(text)?.[1]?.toLowerCase();
    api.presence[user] = basic === 'open' ? 'open' : 'closed';
    renderBuddies();
  }

  private readonly pending = new Map<number, ChatEntry>();

  sendMessage(to: string, text: string): void {
    const pager = this.dum.makePagerMessage(`sip:${to}@${this.domain}`, this.profile);
    const entry: ChatEntry = { direction: 'out', peer: to, text };
    this.pending.set(pager.id, entry);
    api.messages.push(entry);
    pager.get().page(text);
    renderMessage(entry);
  }

  private delivered(id: number, res: SipResponse): void {
    const entry = this.pending.get(id);
    this.pending.delete(id);
    if (!entry) return;
    entry.status = res.status;
    if (res.status >= 300)
      showError(`message to ${entry.peer} not delivered: ${res.status} ${res.reason}`);
    renderMessages();
  }

  async call(user: string): Promise<void> {
    if (currentCall && currentCall.state !== 'ended') {
      showError('a call is in progress');
      return;
    }
    try {
      currentCall = await this.calls.call(`sip:${user}@${this.domain}`, this.profile);
      renderCall();
    } catch (e) {
      showError(`cannot call ${user}: ${(e as Error).message}`);
    }
  }

  answer(call: WebRtcCall): void {
    call.answer().catch((e: unknown) => showError(`cannot answer: ${(e as Error).message}`));
  }

  /** A peer connection with the microphone's audio, its remote audio played. */
  private async peerConnection(): Promise<PeerConnectionLike> {
    const pc = new RTCPeerConnection();
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    for (const track of media.getAudioTracks()) pc.addTrack(track, media);
    pc.addEventListener('track', (e) => {
      remoteAudio.srcObject = e.streams[0] ?? new MediaStream([e.track]);
    });
    pc.addEventListener('connectionstatechange', () => renderCall());
    api.peerConnections.push(pc);
    return pc as unknown as PeerConnectionLike;
  }

  /** Unpublish, unsubscribe, unregister, and close the connection. */
  async stop(): Promise<void> {
    currentCall?.hangup();
    if (this.publication?.isValid()) this.publication.get().end();
    for (const s of this.subscriptions) if (s.isValid()) s.get().end();
    if (this.registration?.isValid()) this.registration.get().removeMyBindings();
    await new Promise((r) => setTimeout(r, 500));
    for (const u of this.unsubscribe) u();
    await this.dum.shutdown({ timeoutMs: 1000 });
    await this.stack.stop();
    dataset.registration = 'unregistered';
  }
}

// ---- rendering ----

function renderControls(): void {
  const registered = dataset.registration === 'registered';
  el<HTMLButtonElement>('register').disabled = registered || session !== undefined;
  el<HTMLButtonElement>('unregister').disabled = !registered;
  el<HTMLButtonElement>('send').disabled = !registered;
}

function renderBuddies(): void {
  const list = el('buddies');
  list.replaceChildren();
  const to = el<HTMLSelectElement>('to');
  const chosen = to.value;
  to.replaceChildren();
  for (const [user, state] of Object.entries(api.presence)) {
    const li = document.createElement('li');
    li.dataset.user = user;
    li.dataset.presence = state;
    const dot = document.createElement('span');
    dot.className = `dot ${state}`;
    dot.title = state === 'open' ? 'online' : 'offline';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = user;
    const call = document.createElement('button');
    call.type = 'button';
    call.textContent = 'Call';
    call.disabled = state !== 'open';
    call.addEventListener('click', () => void session?.call(user));
    li.append(dot, name, call);
    list.append(li);
    const option = document.createElement('option');
    option.value = user;
    option.textContent = user;
    to.append(option);
  }
  if (chosen) to.value = chosen;
}

function renderMessage(entry: ChatEntry): void {
  const li = document.createElement('li');
  li.className = entry.direction;
  const who = entry.direction === 'in' ? `${entry.peer}:` : `to ${entry.peer}:`;
  const mark = entry.status === undefined ? '' : entry.status < 300 ? ' ✓' : ` ✗ ${entry.status}`;
  li.textContent = `${who} ${entry.text}${mark}`;
  el('messages').append(li);
}

function renderMessages(): void {
  el('messages').replaceChildren();
  for (const m of api.messages) renderMessage(m);
}

/** `data-call`: idle, ringing (calling, ringing, incoming), connected, ended. */
function renderCall(): void {
  const c = currentCall;
  const state = c?.state;
  dataset.call =
    state === undefined
      ? 'idle'
      : state === 'connected'
        ? 'connected'
        : state === 'ended'
          ? 'ended'
          : 'ringing';
  const incoming = state === 'incoming';
  el<HTMLButtonElement>('answer').disabled = !incoming;
  el<HTMLButtonElement>('hangup').disabled = !c || state === 'ended';
  const hold = el<HTMLButtonElement>('hold');
  hold.disabled = state !== 'connected';
  hold.textContent = c?.held ? 'Resume' : 'Hold';
  const pc = c?.peerConnection as unknown as RTCPeerConnection | undefined;
  el('callstate').textContent = c
    ? `${c.direction === 'outgoing' ? 'Call to' : 'Call from'} ${c.remote}: ${state}${c.held ? ' (on hold)' : ''}${pc ? `, media ${pc.connectionState}` : ''}${c.failure ? ` (${c.failure.status} ${c.failure.reason})` : ''}`
    : 'No call.';
}

function addLadder(e: TransportMessageEvent): void {
  const m = e.message as SipRequest | SipResponse;
  const line =
    'method' in m && typeof m.method === 'string'
      ? `${m.method} ${(m as SipRequest).uri}`
      : `${(m as SipResponse).status} ${(m as SipResponse).reason} (${m.cseq.method})`;
  const entry: LadderEntry = {
    time: e.time,
    direction: e.direction,
    line,
    text: new TextDecoder().decode(e.bytes),
  };
  api.ladder.push(entry);
  if (api.ladder.length > MAX_LADDER) api.ladder.shift();
  const tbody = el('ladder').querySelector('tbody') as HTMLTableSectionElement;
  const tr = document.createElement('tr');
  tr.className = e.direction;
  const time = document.createElement('td');
  time.textContent = new Date(e.time).toISOString().slice(11, 23);
  const left = document.createElement('td');
  left.textContent = e.direction === 'send' ? line : '';
  left.className = 'line';
  const arrow = document.createElement('td');
  arrow.className = 'arrow';
  arrow.textContent = e.direction === 'send' ? '──────▶' : '◀──────';
  const right = document.createElement('td');
  right.textContent = e.direction === 'receive' ? line : '';
  right.className = 'line';
  tr.append(time, left, arrow, right);
  tr.addEventListener('click', () => {
    const next = tr.nextElementSibling;
    if (next?.classList.contains('detail')) {
      next.remove();
      return;
    }
    const detail = document.createElement('tr');
    detail.className = 'detail';
    const td = document.createElement('td');
    td.colSpan = 4;
    const pre = document.createElement('pre');
    pre.textContent = entry.text;
    td.append(pre);
    detail.append(td);
    tr.after(detail);
  });
  tbody.append(tr);
  while (tbody.rows.length > MAX_LADDER) tbody.deleteRow(0);
  tr.scrollIntoView({ block: 'nearest' });
}

// ---- controls ----

async function login(user: string, password: string): Promise<void> {
  if (session) return;
  el<HTMLButtonElement>('register').disabled = true;
  try {
    config ??= (await (await fetch('/config.json')).json()) as WebConfig;
    session = await Session.start(config, user, password);
  } catch (e) {
    session = undefined;
    showError(`cannot connect: ${(e as Error).message}`);
    renderControls();
  }
}

el<HTMLFormElement>('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void login(el<HTMLInputElement>('user').value.trim(), el<HTMLInputElement>('password').value);
});
el('unregister').addEventListener('click', () => {
  const s = session;
  session = undefined;
  void s?.stop().then(renderControls);
});
el<HTMLFormElement>('chat').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const to = el<HTMLSelectElement>('to').value;
  const text = el<HTMLInputElement>('text');
  if (!to || !text.value) return;
  session?.sendMessage(to, text.value);
  text.value = '';
});
el('answer').addEventListener('click', () => {
  if (currentCall?.state === 'incoming') session?.answer(currentCall);
});
el('hangup').addEventListener('click', () => currentCall?.hangup());
el('hold').addEventListener('click', () => {
  const c = currentCall;
  if (!c) return;
  (c.held ? c.resume() : c.hold()).catch((e: unknown) =>
    showError(`hold: ${(e as Error).message}`),
  );
});
window.addEventListener('pagehide', () => void session?.stop());

const user = params.get('user');
if (user) {
  el<HTMLInputElement>('user').value = user;
  el<HTMLInputElement>('password').value = params.get('password') ?? '';
  void login(user, params.get('password') ?? '');
}
renderControls();
renderCall();
