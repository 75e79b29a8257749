/**
 * A participant's call: one send RTCPeerConnection (camera/mic → SFU) and one receive RTCPeerConnection
 * (SFU → every remote producer), negotiated over {@link SignalingClient}.
 */
import { SIGNALING_PROTOCOL_VERSION, notificationSchemas, type ConsumerInfo, type DataConsumerInfo, type MediaKind, type NotificationOf, type PeerInfo, type ProducerInfo, type ResponseMap } from '../../protocol/src/signaling.ts';
import { SignalingClient, SignalingError } from './SignalingClient.ts';
import type { GeneratorKind } from '../../protocol/src/generators.ts';
import type { ChatMessage } from '../../protocol/src/chat.ts';

export interface RemoteTrack {
  consumerId: string;
  peerId: string;
  kind: MediaKind;
  mid: string;
  track: MediaStreamTrack;
  /** "screen" for a screen share (shown as its own tile); absent: the peer's camera/microphone. */
  source?: 'camera' | 'microphone' | 'screen';
}

/** A track to publish; `viewKey` is for avatar workers (which rendering of the avatar it carries). */
export interface LocalTrack {
  track: MediaStreamTrack;
  stream: MediaStream;
  viewKey?: string;
  /** "screen": an additional video producer marked as a screen share. */
  source?: 'screen';
}

export interface RemoteData {
  dataConsumerId: string;
  peerId: string;
  label: string;
  channel: RTCDataChannel;
}

export type CallEvents = {
  peerjoined: PeerInfo;
  avatarstate: NotificationOf<'avatar:state'>;
  /** Our own avatar's worker lowered or restored its size or frame rate (sent to the owner only). */
  avatarquality: NotificationOf<'avatar:quality'>;
  /** A data channel of another peer (e.g. the owner's motion stream, for avatar workers). */
  data: RemoteData;
  peerleft: { peerId: string };
  producerstate: { peerId: string; producer: ProducerInfo };
  track: RemoteTrack;
  trackended: RemoteTrack;
  disconnected: { reason: string };
  /** Another participant's chat message. */
  chat: ChatMessage;
  /** The room's active speaker changed (null: none). */
  activespeaker: NotificationOf<'room:activespeaker'>;
  /**
   * Our own connection: "connected"; "reconnecting" (signaling or media lost: the client resumes by
   * itself); "offline" (given up, or left).
   */
  connectionstate: { state: ConnectionState; reason?: string };
  /** Another participant lost its connection ("reconnecting") or resumed ("connected"). */
  peerconnection: NotificationOf<'peer:connection'>;
  /**
   * The server no longer knew us (it restarted, or our grace period ended) and we joined afresh:
   * a new peer id and a new list of peers (the page rebuilds its tiles).
   */
  rejoined: { peerId: string; peers: PeerInfo[] };
  /** The server sent a fresh room access token before the join's expires (now in `accessToken`). */
  tokenrefresh: NotificationOf<'token:refresh'>;
  /**
   * The server is shutting down (`server:shutdown`): the connection state turns "reconnecting" with
   * the reason "server restarting", and the client rejoins by itself when a server is back.
   */
  servershutdown: NotificationOf<'server:shutdown'>;
};

type Listener<T> = (payload: T) => void;

export type ConnectionState = 'connected' | 'reconnecting' | 'offline';
/** The "reconnecting" reason after `server:shutdown` (the page's badge says "server restarting…"). */
export const SERVER_RESTARTING = 'server restarting';

type DataChannelSpec = { label: string; init: RTCDataChannelInit; onOpen: (channel: RTCDataChannel) => void };

type JoinOptions = {
  roomId: string;
  displayName: string;
  avatar?: { identityId: string; ownerKey?: string; driver?: 'keypoint' | 'voice'; generator?: GeneratorKind };
  token?: string;
  avatarSession?: string;
};

/** A media connection "disconnected" this long (or "failed") is replaced. */
const ICE_DISCONNECTED_RESTART_MS = 6000;

/** Wait until ICE gathering completes (non-trickle signaling), bounded by a timeout. */
function iceGatheringDone(pc: RTCPeerConnection, timeoutMs = 3000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = (): void => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

export class CallClient {
  readonly #listeners = new Map<keyof CallEvents, Set<Listener<never>>>();
  #signaling: SignalingClient | undefined;
  #sendPc: RTCPeerConnection | undefined;
  #recvPc: RTCPeerConnection | undefined;
  #remote = new Map<string, RemoteTrack>(); // consumerId → track
  #localStream: MediaStream | undefined;
  #recvQueue: Promise<void> = Promise.resolve();
  #sendQueue: Promise<void> = Promise.resolve();
  #pendingData = new Map<string, RTCDataChannel>(); // label:id → channel opened before its offer was processed
  #remoteData = new Map<string, RemoteData>();
  #accessToken: string | undefined;
  #joinOptions: JoinOptions | undefined;
  #resumeKey: string | undefined;
  /** What we publish, published again on new connections after a reconnect. */
  #published: LocalTrack[] = [];
  #publishedData: DataChannelSpec[] = [];
  #state: ConnectionState = 'offline';
  #leaving = false;
  #recovering: Promise<void> | undefined;
  #recoverGen = 0;
  #iceTimers = new Map<RTCPeerConnection, ReturnType<typeof setTimeout>>();
  readonly #Pc: typeof RTCPeerConnection;
  readonly #serverUrl: string | undefined;
  peerId: string | undefined;
  roomId: string | undefined;
  /** The room's recent chat messages when we joined, oldest first. */
  chatHistory: ChatMessage[] = [];
  /** The room's active speaker (from the join, then `activespeaker` events). */
  activeSpeakerPeerId: string | null = null;
  /** performance.now() when join() started; used for time-to-first-frame. */
  joinStartedAt = 0;

  /**
   * @param opts.serverUrl signaling server (default: the page's origin)
   * @param opts.RTCPeerConnection implementation to use (browsers: the global; Node: @roamhq/wrtc's)
   */
  constructor(opts: { serverUrl?: string; RTCPeerConnection?: typeof RTCPeerConnection } = {}) {
    this.#serverUrl = opts.serverUrl;
    this.#Pc = opts.RTCPeerConnection ?? globalThis.RTCPeerConnection;
  }

  on<K extends keyof CallEvents>(event: K, listener: Listener<CallEvents[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  #emit<K extends keyof CallEvents>(event: K, payload: CallEvents[K]): void {
    for (const l of this.#listeners.get(event) ?? []) {
      try {
        (l as Listener<CallEvents[K]>)(payload);
      } catch (err) {
        console.error(`listener for ${event} failed`, err);
      }
    }
  }

  get joined(): boolean {
    return this.peerId !== undefined;
  }

  /** connected / reconnecting / offline (see the "connectionstate" event). */
  get connectionState(): ConnectionState {
    return this.#state;
  }

  #setState(state: ConnectionState, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit('connectionstate', { state, ...(reason !== undefined ? { reason } : {}) });
  }

  /** The room access token this client joined with, or the server's refreshed one. */
  get accessToken(): string | undefined {
    return this.#accessToken;
  }

  get remoteTracks(): RemoteTrack[] {
    return [...this.#remote.values()];
  }

  get receivePeerConnection(): RTCPeerConnection | undefined {
    return this.#recvPc;
  }

  get sendPeerConnection(): RTCPeerConnection | undefined {
    return this.#sendPc;
  }

  async join(opts: JoinOptions & {
    stream: MediaStream | null;
    /** Data channels to open on the send transport before publishing (e.g. "motion"). */
    dataChannels?: DataChannelSpec[];
  }): Promise<PeerInfo[]> {
    if (this.joined) throw new Error('already joined');
    this.joinStartedAt = performance.now();
    this.#leaving = false;
    const signaling = await SignalingClient.connect(this.#serverUrl);
    this.#signaling = signaling;
    this.#listen(signaling);
    this.#newRecvPc();
    const { stream, dataChannels, ...joinOptions } = opts;
    let joined;
    try {
      joined = await this.#requestJoin(joinOptions);
    } catch (err) {
      this.#teardown();
      throw err;
    }
    this.#joinOptions = joinOptions;
    this.#accessToken ??= opts.token;
    this.#setState('connected');
    const tracks = stream ? stream.getTracks().map((track) => ({ track, stream })) : [];
    if (stream) this.#localStream = stream;
    if (tracks.length > 0 || (dataChannels?.length ?? 0) > 0) await this.publish(tracks, dataChannels ?? []);
    return joined.peers;
  }

  async #requestJoin(opts: JoinOptions, resume?: { peerId: string; resumeKey: string }): Promise<ResponseMap['join']> {
    const signaling = this.#signaling;
    if (!signaling) throw new Error('not connected');
    const token = this.#accessToken ?? opts.token;
    const joined = await signaling.request('join', {
      protocolVersion: SIGNALING_PROTOCOL_VERSION,
      roomId: opts.roomId,
      displayName: opts.displayName,
      ...(resume ? { resume } : {}),
      ...(opts.avatar && !resume ? { avatar: opts.avatar } : {}),
      ...(token !== undefined ? { token } : {}),
      ...(opts.avatarSession ? { avatarSession: opts.avatarSession } : {}),
    });
    this.peerId = joined.peerId;
    this.roomId = joined.roomId;
    this.#resumeKey = joined.resumeKey;
    this.chatHistory = joined.chatHistory ?? [];
    this.activeSpeakerPeerId = joined.activeSpeakerPeerId ?? null;
    return joined;
  }

  #listen(signaling: SignalingClient): void {
    const socket = signaling.socket;
    socket.on('disconnect', (reason) => {
      if (this.#leaving || !this.joined) return;
      // Our own close, or a server that kicked us, does not come back by itself: try once more shortly.
      if (reason === 'io client disconnect') return;
      this.#setState('reconnecting', String(reason));
      this.#emit('disconnected', { reason: String(reason) });
      if (reason === 'io server disconnect') setTimeout(() => { if (!this.#leaving && this.#signaling === signaling) socket.connect(); }, 500);
    });
    socket.on('connect', () => {
      if (this.#leaving || !this.joined || this.#signaling !== signaling) return;
      this.#recover('resume');
    });
    socket.on('peer:joined', (p) => {
      const r = notificationSchemas['peer:joined'].safeParse(p);
      if (r.success) this.#emit('peerjoined', r.data);
    });
    socket.on('peer:left', (p) => {
      const r = notificationSchemas['peer:left'].safeParse(p);
      if (!r.success) return;
      this.#emit('peerleft', r.data);
    });
    socket.on('peer:connection', (p) => {
      const r = notificationSchemas['peer:connection'].safeParse(p);
      if (r.success) this.#emit('peerconnection', r.data);
    });
    socket.on('server:shutdown', (p) => {
      const r = notificationSchemas['server:shutdown'].safeParse(p);
      if (!r.success || this.#leaving || !this.joined || this.#signaling !== signaling) return;
      this.#setState('reconnecting', SERVER_RESTARTING);
      this.#emit('servershutdown', r.data);
    });
    socket.on('token:refresh', (p) => {
      const r = notificationSchemas['token:refresh'].safeParse(p);
      if (!r.success) return;
      this.#accessToken = r.data.token;
      this.#emit('tokenrefresh', r.data);
    });
    socket.on('avatar:state', (p) => {
      const r = notificationSchemas['avatar:state'].safeParse(p);
      if (r.success) this.#emit('avatarstate', r.data);
    });
    socket.on('avatar:quality', (p) => {
      const r = notificationSchemas['avatar:quality'].safeParse(p);
      if (r.success) this.#emit('avatarquality', r.data);
    });
    socket.on('room:activespeaker', (p) => {
      const r = notificationSchemas['room:activespeaker'].safeParse(p);
      if (!r.success) return;
      this.activeSpeakerPeerId = r.data.peerId;
      this.#emit('activespeaker', r.data);
    });
    socket.on('chat:message', (p) => {
      const r = notificationSchemas['chat:message'].safeParse(p);
      if (r.success) this.#emit('chat', r.data);
    });
    socket.on('producer:state', (p) => {
      const r = notificationSchemas['producer:state'].safeParse(p);
      if (r.success) this.#emit('producerstate', r.data);
    });
    socket.on('consume:offer', (p, ack) => {
      const r = notificationSchemas['consume:offer'].safeParse(p);
      if (!r.success || typeof ack !== 'function') return;
      // Offers are applied strictly in order.
      this.#recvQueue = this.#recvQueue.then(async () => {
        try {
          ack({ answer: await this.#onConsumeOffer(r.data.offer, r.data.consumers, r.data.dataConsumers) });
        } catch (err) {
          console.error('consume offer failed', err);
        }
      });
    });
  }

  /** max-bundle: one ICE/DTLS transport for all tracks (the SFU bundles everything anyway). */
  #newRecvPc(): RTCPeerConnection {
    const pc = new this.#Pc({ bundlePolicy: 'max-bundle' });
    this.#recvPc = pc;
    pc.addEventListener('datachannel', (ev) => {
      const channel = (ev as RTCDataChannelEvent).channel;
      channel.binaryType = 'arraybuffer';
      this.#pendingData.set(`${channel.label}`, channel);
      this.#matchData();
    });
    this.#watchIce(pc);
    return pc;
  }

  /** A connection that fails, or stays disconnected for a few seconds, is replaced (with the server's transports). */
  #watchIce(pc: RTCPeerConnection): void {
    pc.addEventListener('connectionstatechange', () => {
      if (pc !== this.#recvPc && pc !== this.#sendPc) return;
      const state = pc.connectionState;
      const timer = this.#iceTimers.get(pc);
      if (state === 'connected') {
        if (timer) clearTimeout(timer);
        this.#iceTimers.delete(pc);
        if (this.#state === 'reconnecting' && !this.#recovering && this.#signaling?.socket.connected) this.#setState('connected');
        return;
      }
      if (state === 'failed') {
        this.#recover('restart');
        return;
      }
      if (state === 'disconnected' && !timer) {
        this.#setState('reconnecting', 'media connection lost');
        this.#iceTimers.set(pc, setTimeout(() => {
          this.#iceTimers.delete(pc);
          if ((pc === this.#recvPc || pc === this.#sendPc) && pc.connectionState !== 'connected') this.#recover('restart');
        }, ICE_DISCONNECTED_RESTART_MS));
      }
    });
  }

  /**
   * Come back without the user: "resume" (a new signaling socket: join with our resume key, or join
   * afresh when the server no longer knows us) or "restart" (signaling is up, media died: new
   * transports). Either way the media connections are new and everything is published again.
   */
  #recover(kind: 'resume' | 'restart'): void {
    // A restart waits for the one running; a resume (new socket) supersedes whatever runs (it may hang on the old socket).
    if (this.#recovering && kind === 'restart') return;
    const gen = ++this.#recoverGen;
    this.#setState('reconnecting', kind === 'resume' ? 'signaling reconnected' : 'media connection lost');
    const run = this.#runRecover(kind, gen);
    this.#recovering = run;
    run.then(
      () => {
        if (gen !== this.#recoverGen) return;
        this.#recovering = undefined;
        if (!this.#leaving) this.#setState('connected');
      },
      (err: unknown) => {
        if (gen !== this.#recoverGen) return;
        this.#recovering = undefined;
        if (this.#leaving) return;
        console.error('reconnect failed', err);
        // Signaling will retry by itself when the socket drops; a refused resume ends the call.
        // (a draining server refuses the resume with SHUTTING_DOWN: its successor will take it)
        if (err instanceof SignalingError && !['TIMEOUT', 'CLIENT_CLOSED_REQUEST', 'INTERNAL', 'SHUTTING_DOWN'].includes(err.body.code)) {
          this.#emit('disconnected', { reason: err.message });
          this.#teardown();
          this.#setState('offline', err.message);
        }
      },
    );
  }

  async #runRecover(kind: 'resume' | 'restart', gen: number): Promise<void> {
    const opts = this.#joinOptions;
    const signaling = this.#signaling;
    if (!opts || !signaling || !this.peerId) return;
    if (!signaling.socket.connected) return; // the socket's own reconnection brings us back to resume
    let rejoined: ResponseMap['join'] | undefined;
    if (kind === 'resume') {
      try {
        await this.#requestJoin(opts, { peerId: this.peerId, resumeKey: this.#resumeKey ?? '' });
      } catch (err) {
        if (!(err instanceof SignalingError) || (err.body.code !== 'RESUME_EXPIRED' && err.body.code !== 'RESUME_REFUSED' && err.body.code !== 'BAD_REQUEST')) throw err;
        // The server restarted or let us go: the same person joins again, as a new peer.
        rejoined = await this.#requestJoin(opts);
      }
    } else {
      await signaling.request('restartTransports', {});
    }
    if (gen !== this.#recoverGen || this.#leaving) return;
    this.#resetMedia();
    if (rejoined) this.#emit('rejoined', { peerId: rejoined.peerId, peers: rejoined.peers });
    if (this.#published.length > 0 || this.#publishedData.length > 0) await this.#publishNow(this.#published, this.#publishedData);
  }

  /** New (empty) media connections; what came over the old ones has ended. */
  #resetMedia(): void {
    for (const t of this.#iceTimers.values()) clearTimeout(t);
    this.#iceTimers.clear();
    for (const remote of this.#remote.values()) this.#emit('trackended', remote);
    this.#remote.clear();
    this.#remoteData.clear();
    this.#remoteDataInfo.clear();
    this.#pendingData.clear();
    const oldSend = this.#sendPc;
    const oldRecv = this.#recvPc;
    this.#sendPc = undefined;
    this.#recvPc = undefined;
    oldSend?.close();
    oldRecv?.close();
    this.#sendQueue = Promise.resolve();
    this.#recvQueue = Promise.resolve();
    this.#newRecvPc();
  }

  /** Publish more tracks (and data channels) on the send transport; safe to call repeatedly. */
  publish(tracks: LocalTrack[], dataChannels: DataChannelSpec[] = []): Promise<void> {
    this.#published.push(...tracks);
    this.#publishedData.push(...dataChannels);
    return this.#publishNow(tracks, dataChannels);
  }

  #publishNow(tracks: LocalTrack[], dataChannels: DataChannelSpec[]): Promise<void> {
    const run = async (): Promise<void> => {
      const signaling = this.#signaling;
      if (!signaling) throw new Error('not connected');
      let pc = this.#sendPc;
      if (!pc) {
        pc = this.#sendPc = new this.#Pc({ bundlePolicy: 'max-bundle' });
        this.#watchIce(pc);
      }
      const added: { transceiver: RTCRtpTransceiver; viewKey?: string; source?: 'screen' }[] = [];
      for (const t of tracks) {
        const transceiver = pc.addTransceiver(t.track, { direction: 'sendonly', streams: [t.stream] });
        added.push({ transceiver, ...(t.viewKey ? { viewKey: t.viewKey } : {}), ...(t.source ? { source: t.source } : {}) });
      }
      for (const dc of dataChannels) {
        const channel = pc.createDataChannel(dc.label, dc.init);
        channel.binaryType = 'arraybuffer';
        channel.addEventListener('open', () => dc.onOpen(channel));
      }
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringDone(pc);
      const local = pc.localDescription;
      if (!local) throw new Error('no local description');
      const trackViews: Record<string, string> = {};
      for (const a of added) if (a.viewKey && a.transceiver.mid) trackViews[a.transceiver.mid] = a.viewKey;
      const trackSources: Record<string, 'screen'> = {};
      for (const a of added) if (a.source && a.transceiver.mid) trackSources[a.transceiver.mid] = a.source;
      const known = new Set(this.#producers.map((p) => p.producerId));
      const { answer, producers } = await signaling.request('publish', {
        offer: { type: 'offer', sdp: local.sdp },
        ...(Object.keys(trackViews).length > 0 ? { trackViews } : {}),
        ...(Object.keys(trackSources).length > 0 ? { trackSources } : {}),
      });
      this.#producers = producers;
      this.#newProducers = producers.filter((p) => !known.has(p.producerId));
      await pc.setRemoteDescription(answer);
    };
    const next = this.#sendQueue.then(run);
    this.#sendQueue = next.catch(() => undefined);
    return next;
  }

  /**
   * Send `next` instead of the published `old` track (another camera or microphone) without renegotiating
   * (RTCRtpSender.replaceTrack); the local stream given to join() follows. `next` keeps the mute state
   * of `old`. Throws when `old` is not published.
   */
  async replaceTrack(old: MediaStreamTrack, next: MediaStreamTrack): Promise<void> {
    if (old.kind !== next.kind) throw new TypeError(`cannot replace a ${old.kind} track by a ${next.kind} track`);
    const sender = this.#sendPc?.getSenders().find((s) => s.track === old);
    if (!sender) throw new Error(`the ${old.kind} track is not published`);
    next.enabled = old.enabled;
    await sender.replaceTrack(next);
    // a reconnection republishes what is published now
    this.#published = this.#published.map((t) => (t.track === old ? { ...t, track: next } : t));
    const stream = this.#localStream;
    if (stream?.getTracks().includes(old)) {
      stream.removeTrack(old);
      stream.addTrack(next);
    }
  }

  /**
   * Share a screen (a getDisplayMedia track) as an additional video producer marked "screen";
   * resolves with its producer id. The track ending (the browser's own "stop sharing") stops it.
   */
  async startScreenShare(track: MediaStreamTrack): Promise<string> {
    if (!this.joined) throw new Error('not joined');
    if (this.#screen) throw new Error('already sharing a screen');
    await this.publish([{ track, stream: new MediaStream([track]), source: 'screen' }]);
    const producer = this.#newProducers.find((p) => p.source === 'screen');
    if (!producer) throw new Error('the server did not create the screen-share producer');
    this.#screen = { track, producerId: producer.producerId };
    track.addEventListener('ended', () => void this.stopScreenShare());
    return producer.producerId;
  }

  get screenShareProducerId(): string | undefined {
    return this.#screen?.producerId;
  }

  /** Stop the screen share (idempotent): the server closes its producer, so everyone's tile goes. */
  async stopScreenShare(): Promise<void> {
    const screen = this.#screen;
    if (!screen) return;
    this.#screen = undefined;
    screen.track.stop();
    if (!this.#signaling || !this.joined) return;
    await this.#signaling.request('closeProducer', { producerId: screen.producerId }).catch(() => undefined);
    await this.unpublish(screen.track).catch(() => undefined);
  }

  /** Stop sending a published track (e.g. a personal view nobody watches any more). */
  async unpublish(track: MediaStreamTrack): Promise<void> {
    const pc = this.#sendPc;
    const sender = pc?.getSenders().find((s) => s.track === track);
    this.#published = this.#published.filter((t) => t.track !== track);
    if (!pc || !sender) return;
    pc.removeTrack(sender);
    await this.publish([]);
  }

  #matchData(): void {
    for (const [label, channel] of this.#pendingData) {
      const info = [...this.#remoteDataInfo.values()].find((d) => d.label === label && !this.#remoteData.has(d.dataConsumerId));
      if (!info) continue;
      this.#pendingData.delete(label);
      const remote: RemoteData = { dataConsumerId: info.dataConsumerId, peerId: info.peerId, label, channel };
      this.#remoteData.set(info.dataConsumerId, remote);
      this.#emit('data', remote);
    }
  }

  #remoteDataInfo = new Map<string, DataConsumerInfo>();
  /** Our producers, from the last publish answer. */
  #producers: ProducerInfo[] = [];
  /** Those the last publish created. */
  #newProducers: ProducerInfo[] = [];
  #screen: { track: MediaStreamTrack; producerId: string } | undefined;

  async #onConsumeOffer(offer: RTCSessionDescriptionInit, consumers: ConsumerInfo[], dataConsumers: DataConsumerInfo[] = []): Promise<{ type: 'answer'; sdp: string }> {
    const pc = this.#recvPc;
    if (!pc) throw new Error('no receive transport');
    for (const d of dataConsumers) this.#remoteDataInfo.set(d.dataConsumerId, d);
    this.#matchData();
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await iceGatheringDone(pc);
    const byMid = new Map(pc.getTransceivers().map((t) => [t.mid, t]));
    const live = new Set<string>();
    for (const c of consumers) {
      live.add(c.consumerId);
      if (this.#remote.has(c.consumerId)) continue;
      const transceiver = byMid.get(c.mid);
      if (!transceiver) continue;
      const remote: RemoteTrack = { consumerId: c.consumerId, peerId: c.peerId, kind: c.kind, mid: c.mid, track: transceiver.receiver.track, ...(c.source ? { source: c.source } : {}) };
      this.#remote.set(c.consumerId, remote);
      this.#emit('track', remote);
    }
    for (const [id, remote] of this.#remote) {
      if (live.has(id)) continue;
      this.#remote.delete(id);
      this.#emit('trackended', remote);
    }
    const local = pc.localDescription;
    if (!local) throw new Error('no local description');
    return { type: 'answer', sdp: local.sdp };
  }

  /** Free view of an avatar: "personal" (only this viewer; null resets) or "default" (owner only). */
  /** Avatar owners: tell everyone the camera driving the avatar is off (it idles) or back. */
  setAvatarPaused(paused: boolean): Promise<ResponseMap['setAvatarPaused']> {
    if (!this.#signaling || !this.joined) return Promise.reject(new Error('not joined'));
    return this.#signaling.request('setAvatarPaused', { paused });
  }

  setAvatarView(peerId: string, scope: 'personal' | 'default', view: { yaw: number; pitch: number; roll: number } | null): Promise<ResponseMap['setAvatarView']> {
    if (!this.#signaling || !this.joined) return Promise.reject(new Error('not joined'));
    return this.#signaling.request('setAvatarView', { peerId, scope, view });
  }

  /** Send a chat message to the room; resolves with it as the others receive it (rejects with a SignalingError, e.g. RATE_LIMITED). */
  sendChatMessage(text: string): Promise<ChatMessage> {
    if (!this.#signaling || !this.joined) return Promise.reject(new Error('not joined'));
    return this.#signaling.request('sendChatMessage', { text });
  }

  /** Mute or unmute the local mic/camera; everyone sees the new state. */
  async setMuted(kind: MediaKind, muted: boolean): Promise<void> {
    for (const t of this.#localStream?.getTracks() ?? []) if (t.kind === kind) t.enabled = !muted;
    if (this.#signaling && this.joined) await this.#signaling.request('setProducerPaused', { kind, paused: muted });
  }

  async leave(): Promise<void> {
    this.#leaving = true;
    const signaling = this.#signaling;
    if (signaling && this.joined) {
      try {
        await signaling.request('leave', {});
      } catch {
        // leaving anyway
      }
    }
    this.#teardown();
  }

  #teardown(): void {
    this.#leaving = true;
    for (const t of this.#iceTimers.values()) clearTimeout(t);
    this.#iceTimers.clear();
    this.#published = [];
    this.#publishedData = [];
    this.#joinOptions = undefined;
    this.#resumeKey = undefined;
    this.#setState('offline');
    for (const remote of this.#remote.values()) this.#emit('trackended', remote);
    this.#remote.clear();
    this.#remoteData.clear();
    this.#remoteDataInfo.clear();
    this.#pendingData.clear();
    this.#sendQueue = Promise.resolve();
    this.#sendPc?.close();
    this.#recvPc?.close();
    this.#sendPc = undefined;
    this.#recvPc = undefined;
    this.#signaling?.close();
    this.#signaling = undefined;
    this.peerId = undefined;
    this.roomId = undefined;
    this.chatHistory = [];
    this.activeSpeakerPeerId = null;
    this.#screen?.track.stop();
    this.#screen = undefined;
    this.#producers = [];
    this.#newProducers = [];
    this.#recvQueue = Promise.resolve();
  }
}
