/** Typed socket.io client for the signaling protocol: requests resolve with data or reject with a SignalingError. */
import { io, type Socket } from 'socket.io-client';
import { errorBody, type Ack, type ErrorBody, type RequestInput, type RequestName, type ResponseMap, type ServerToClientEvents } from '../../protocol/src/signaling.ts';

export class SignalingError extends Error {
  override name = 'SignalingError';
  constructor(readonly body: ErrorBody) {
    super(body.message);
  }
}

const REQUEST_TIMEOUT_MS = 15_000;

export class SignalingClient {
  readonly socket: Socket<ServerToClientEvents>;

  private constructor(socket: Socket<ServerToClientEvents>) {
    this.socket = socket;
  }

  /** Connect; rejects with a readable error when the server cannot be reached. */
  static connect(url: string | undefined, timeoutMs = 8000): Promise<SignalingClient> {
    // After the first connection socket.io reconnects by itself, with backoff (0.25 s doubling up to 2 s, ±30 %).
    const opts = { transports: ['websocket'], timeout: timeoutMs, reconnection: true, reconnectionDelay: 250, reconnectionDelayMax: 2000, randomizationFactor: 0.3 };
    const socket: Socket<ServerToClientEvents> = url ? io(url, opts) : io(opts);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('timed out')), timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.close();
        reject(new Error(`Cannot reach the avatar-sfu server (${err.message}). Is it running?`));
      };
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('connect_error');
        resolve(new SignalingClient(socket));
      });
      socket.once('connect_error', fail);
    });
  }

  request<N extends RequestName>(name: N, payload: RequestInput<N>): Promise<ResponseMap[N]> {
    return new Promise((resolve, reject) => {
      (this.socket as unknown as Socket).timeout(REQUEST_TIMEOUT_MS).emit(name, payload, (err: Error | null, response: Ack<ResponseMap[N]>) => {
        if (err) return reject(new SignalingError(errorBody('TIMEOUT', `${name}: no answer from server`)));
        if (response.ok) resolve(response.data);
        else reject(new SignalingError(response.error));
      });
    });
  }

  close(): void {
    this.socket.close();
  }
}
