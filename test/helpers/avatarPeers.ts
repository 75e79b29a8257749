/** Node participants for avatar tests: real CallClient over @roamhq/wrtc, plus frame probes. */
import type { GeneratorKind } from '../../protocol/src/generators.ts';
import fs from 'node:fs';
import wrtc from '@roamhq/wrtc';
import { CallClient, type RemoteTrack } from '../../call/src/CallClient.ts';
import { encodeMotionFrame, type MotionPose } from '../../protocol/src/motion.ts';

export const WrtcPeerConnection = wrtc.RTCPeerConnection as unknown as typeof RTCPeerConnection;

/** Owner keys of the identities uploadPhotoFile enrolled (joining as one, or reading it, needs its key). */
const ownerKeys = new Map<string, string>();

/** The owner key of an identity uploadPhotoFile enrolled. */
export function ownerKeyOf(identityId: string): string {
  const key = ownerKeys.get(identityId);
  if (!key) throw new Error(`no owner key for identity ${identityId} (not enrolled by uploadPhotoFile)`);
  return key;
}

/** Remember the owner key of an identity enrolled some other way (e.g. a bench posting a JPEG itself). */
export function rememberOwnerKey(identityId: string, ownerKey: string): void {
  ownerKeys.set(identityId, ownerKey);
}

/** POST a PNG file to the server's /api/identities; returns the new identity's id (its owner key: ownerKeyOf). */
export async function uploadPhotoFile(serverUrl: string, file: string): Promise<string> {
  const res = await fetch(`${serverUrl}/api/identities`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: fs.readFileSync(file) });
  const body = (await res.json()) as { identityId?: string; ownerKey?: string };
  if (res.status !== 201 || !body.identityId || !body.ownerKey) throw new Error(`enrollment failed: ${res.status} ${JSON.stringify(body)}`);
  ownerKeys.set(body.identityId, body.ownerKey);
  return body.identityId;
}

/** Latest decoded frame (luma plane) and frame count of one remote video peer, following track changes. */
export class VideoProbe {
  frames = 0;
  width = 0;
  height = 0;
  luma: Uint8Array = new Uint8Array(0);
  lastFrameAt = 0;
  /** Called with every decoded frame (its arrival time and luma plane). */
  onFrame: ((t: number, luma: Uint8Array) => void) | undefined;
  #sink: { stop(): void; onframe: unknown } | undefined;

  constructor(client: CallClient, readonly peerId: () => string | undefined) {
    client.on('track', (t: RemoteTrack) => {
      if (t.kind !== 'video' || t.peerId !== this.peerId()) return;
      this.#sink?.stop();
      const sink = new wrtc.nonstandard.RTCVideoSink(t.track as never);
      sink.onframe = ({ frame }: { frame: { width: number; height: number; data: Uint8Array } }) => {
        this.frames++;
        this.lastFrameAt = performance.now();
        this.width = frame.width;
        this.height = frame.height;
        this.luma = frame.data.slice(0, frame.width * frame.height);
        this.onFrame?.(this.lastFrameAt, this.luma);
      };
      this.#sink = sink as never;
    });
  }

  stop(): void {
    this.#sink?.stop();
  }
}

/** Mean absolute luma difference (0–255) between two frames of equal size, optionally in a box (fractions). */
export function lumaDiff(a: Uint8Array, b: Uint8Array, width: number, box = { x0: 0, y0: 0, x1: 1, y1: 1 }): number {
  if (a.length !== b.length || a.length === 0) return Number.NaN;
  const height = a.length / width;
  let sum = 0;
  let n = 0;
  for (let y = Math.floor(box.y0 * height); y < Math.floor(box.y1 * height); y++) {
    for (let x = Math.floor(box.x0 * width); x < Math.floor(box.x1 * width); x++) {
      sum += Math.abs(a[y * width + x]! - b[y * width + x]!);
      n++;
    }
  }
  return sum / n;
}

/** The avatar owner: joins "as avatar" and streams motion frames on an unordered, no-retransmit channel. */
export class MotionOwner {
  readonly client: CallClient;
  channel: RTCDataChannel | undefined;
  seq = 0;
  pose: MotionPose = { yaw: 0, pitch: 0, roll: 0, tx: 0, ty: 0, scale: 1 };
  expression = new Float32Array(12);
  #timer: NodeJS.Timeout | undefined;

  constructor(serverUrl: string) {
    this.client = new CallClient({ serverUrl, RTCPeerConnection: WrtcPeerConnection });
  }

  /**
   * Join as the avatar of `identityId` (enrolled by uploadPhotoFile). `generator`: the renderer wanted;
   * `token`: a room access token (servers with AUTH_SECRET).
   */
  async join(roomId: string, identityId: string, fps = 30, opts: { generator?: GeneratorKind; token?: string } = {}): Promise<string> {
    let opened: () => void;
    const open = new Promise<void>((r) => (opened = r));
    await this.client.join({
      roomId,
      displayName: 'owner',
      stream: null,
      avatar: { identityId, ownerKey: ownerKeyOf(identityId), ...(opts.generator ? { generator: opts.generator } : {}) },
      ...(opts.token !== undefined ? { token: opts.token } : {}),
      dataChannels: [{ label: 'motion', init: { ordered: false, maxRetransmits: 0 }, onOpen: (ch) => ((this.channel = ch), opened()) }],
    });
    await open;
    this.#timer = setInterval(() => this.sendFrame(), 1000 / fps);
    return this.client.peerId!;
  }

  sendFrame(): void {
    if (this.channel?.readyState !== 'open') return;
    this.channel.send(encodeMotionFrame({ seq: this.seq++ >>> 0, captureMs: Date.now() % 2 ** 32, pose: this.pose, expression: this.expression }) as Uint8Array<ArrayBuffer>);
  }

  sendRaw(bytes: Uint8Array): void {
    if (this.channel?.readyState === 'open') this.channel.send(bytes as Uint8Array<ArrayBuffer>);
  }

  async leave(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.client.leave();
  }
}
