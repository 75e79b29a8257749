/**
 * A lightweight participant for churn and soak runs: a real socket.io signaling socket and real
 * @roamhq/wrtc RTCPeerConnections (native DTLS/SRTP, so a thousand of them cost the measuring process
 * little), speaking the signaling protocol directly so that it can also vanish the way a crashed tab
 * does (`drop()`: its TCP connection is torn down, nothing is said) or come back on a fresh socket
 * with its resume key (`reconnect()`), which CallClient only does on its own schedule.
 */
import wrtc from '@roamhq/wrtc';
import { io as ioClient, type Socket } from 'socket.io-client';
import { SIGNALING_PROTOCOL_VERSION, type Ack, type ConsumerInfo, type JoinResponse, type PublishResponse, type SessionDescription } from '../../protocol/src/signaling.ts';

const Pc = wrtc.RTCPeerConnection as unknown as typeof RTCPeerConnection;

function gathered(pc: RTCPeerConnection, timeoutMs = 3000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = (): void => void (pc.iceGatheringState === 'complete' && done());
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

function connected(pc: RTCPeerConnection, what: string, timeoutMs: number): Promise<void> {
  if (pc.connectionState === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      pc.removeEventListener('connectionstatechange', check);
      if (err) reject(err);
      else resolve();
    };
    const check = (): void => {
      if (pc.connectionState === 'connected') finish();
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') finish(new Error(`${what} ${pc.connectionState}`));
    };
    const timer = setTimeout(() => finish(new Error(`${what} not connected after ${timeoutMs} ms (state ${pc.connectionState})`)), timeoutMs);
    pc.addEventListener('connectionstatechange', check);
  });
}

function openSocket(url: string, timeoutMs = 8000): Promise<Socket> {
  const socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: timeoutMs });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('connect_error');
      resolve(socket);
    });
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

export interface ChurnPeerOptions {
  /** Publish a microphone (a wrtc RTCAudioSource track that plays silence while `feedAudio` runs). */
  publishAudio?: boolean;
  /** Called with each remote video track (e.g. to attach an RTCVideoSink and count decoded frames). */
  onVideoTrack?: (track: MediaStreamTrack, consumer: ConsumerInfo) => void;
}

export class ChurnPeer {
  socket!: Socket;
  sendPc: RTCPeerConnection | undefined;
  recvPc!: RTCPeerConnection;
  peerId = '';
  resumeKey = '';
  /** The consumers of the last offer this peer answered. */
  consumers: ConsumerInfo[] = [];
  offersAnswered = 0;
  reconnects = 0;
  /** Errors of offers it could not answer (a test asserts there are none). */
  readonly errors: string[] = [];
  #audio: { source: { onData(d: unknown): void }; track: MediaStreamTrack } | undefined;
  #recvQueue: Promise<void> = Promise.resolve();
  #gone = false;

  private constructor(readonly url: string, readonly roomId: string, readonly name: string, readonly opts: ChurnPeerOptions) {}

  /** Connect, join `roomId`, publish (when asked) and wait until its send transport is connected. */
  static async join(url: string, roomId: string, name: string, opts: ChurnPeerOptions = {}): Promise<ChurnPeer> {
    const p = new ChurnPeer(url, roomId, name, opts);
    try {
      await p.#connectAndJoin(undefined);
    } catch (err) {
      p.#closeMedia();
      p.socket?.close();
      throw err;
    }
    return p;
  }

  async #connectAndJoin(resume: { peerId: string; resumeKey: string } | undefined): Promise<void> {
    this.socket = await openSocket(this.url);
    this.#newRecvPc();
    this.#listen(this.socket);
    const joined = await this.request<JoinResponse>('join', { protocolVersion: SIGNALING_PROTOCOL_VERSION, roomId: this.roomId, displayName: this.name, ...(resume ? { resume } : {}) });
    this.peerId = joined.peerId;
    this.resumeKey = joined.resumeKey ?? '';
    if (this.opts.publishAudio) await this.publishAudio();
  }

  #newRecvPc(): void {
    const pc = new Pc({ bundlePolicy: 'max-bundle' });
    this.recvPc = pc;
    pc.addEventListener('track', (ev) => {
      const e = ev as RTCTrackEvent;
      if (e.track.kind !== 'video' || !this.opts.onVideoTrack) return;
      const consumer = this.consumers.find((c) => c.mid === e.transceiver.mid);
      if (consumer) this.opts.onVideoTrack(e.track, consumer);
    });
  }

  #listen(socket: Socket): void {
    socket.on('consume:offer', (p: { offer: SessionDescription; consumers: ConsumerInfo[] }, ack: (a: { answer: SessionDescription }) => void) => {
      if (typeof ack !== 'function') return;
      const pc = this.recvPc;
      this.#recvQueue = this.#recvQueue.then(async () => {
        if (socket !== this.socket || pc !== this.recvPc || this.#gone) return;
        try {
          this.consumers = p.consumers;
          await pc.setRemoteDescription(p.offer);
          await pc.setLocalDescription(await pc.createAnswer());
          await gathered(pc);
          this.offersAnswered++;
          ack({ answer: { type: 'answer', sdp: pc.localDescription!.sdp } });
        } catch (err) {
          if (!this.#gone) this.errors.push(`consume offer: ${(err as Error).message}`);
        }
      });
    });
  }

  /** Publish the microphone on a new send connection and wait until it is connected. */
  async publishAudio(): Promise<void> {
    const pc = new Pc({ bundlePolicy: 'max-bundle' });
    this.sendPc = pc;
    if (!this.#audio) {
      const source = new wrtc.nonstandard.RTCAudioSource();
      this.#audio = { source, track: source.createTrack() };
    }
    pc.addTransceiver(this.#audio.track, { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const res = await this.request<PublishResponse>('publish', { offer: { type: 'offer', sdp: pc.localDescription!.sdp } });
    await pc.setRemoteDescription(res.answer);
    await connected(pc, `${this.name} send connection`, 15_000);
  }

  /** 10 ms of silence into the published microphone (call it from a timer to make RTP flow). */
  feedAudio(): void {
    this.#audio?.source.onData({ samples: new Int16Array(480), sampleRate: 48_000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
  }

  /** Wait until the receive connection is up and the last answered offer lists `n` consumers. */
  async waitConsumers(n: number, timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.consumers.length < n) {
      if (Date.now() > until) throw new Error(`${this.name}: ${this.consumers.length} consumers, wanted ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await connected(this.recvPc, `${this.name} receive connection`, Math.max(1000, until - Date.now()));
  }

  async request<T>(event: string, payload: unknown): Promise<T> {
    const ack = (await this.socket.timeout(15_000).emitWithAck(event, payload)) as Ack<T>;
    if (!ack.ok) throw new Error(`${event}: ${ack.error.code} ${ack.error.message}`);
    return ack.data;
  }

  /** A clean leave: `leave`, then the socket and the connections close. */
  async leave(): Promise<void> {
    try {
      await this.request('leave', {});
    } finally {
      this.close();
    }
  }

  /**
   * The signaling connection is torn down at the TCP level without a word (a crashed tab, a dead
   * network): the server only learns it from the transport closing.
   */
  dropSocket(): void {
    const engine = this.socket.io.engine as unknown as { transport?: { ws?: { terminate?: () => void } } };
    const ws = engine.transport?.ws;
    if (ws?.terminate) ws.terminate();
    else this.socket.io.engine.close();
  }

  /** Vanish: the socket is torn down and the media connections close, with no leave. */
  drop(): void {
    this.dropSocket();
    this.close();
  }

  /** Lose the signaling socket, then come back on a new one with the resume key and publish again. */
  async reconnect(): Promise<void> {
    const old = this.socket;
    this.dropSocket();
    old.close();
    this.#closeMedia();
    this.consumers = [];
    this.#recvQueue = Promise.resolve();
    await this.#connectAndJoin({ peerId: this.peerId, resumeKey: this.resumeKey });
    this.reconnects++;
  }

  #closeMedia(): void {
    this.sendPc?.close();
    this.recvPc?.close();
    this.sendPc = undefined;
  }

  close(): void {
    this.#gone = true;
    this.#closeMedia();
    this.#audio?.track.stop();
    this.socket?.close();
  }
}
