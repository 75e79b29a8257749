/** Owns the rooms of one server; rooms are created on first join and closed when empty. */
import { AppError, InvalidStateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { Room, type RoomConfig } from './Room.ts';

export interface RoomSummary {
  roomId: string;
  peers: number;
  createdAt: string;
}

export class RoomManager {
  readonly #rooms = new Map<string, Room>();
  readonly #creating = new Map<string, Promise<Room>>();
  #closed = false;

  constructor(
    private readonly config: RoomConfig,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  get rooms(): ReadonlyMap<string, Room> {
    return this.#rooms;
  }

  async getOrCreate(roomId: string): Promise<Room> {
    if (this.#closed) throw new InvalidStateError('room manager closed');
    const existing = this.#rooms.get(roomId);
    if (existing && !existing.closed) return existing;
    const pending = this.#creating.get(roomId);
    if (pending) return pending;
    // Rooms still being created count too, or concurrent joins to distinct rooms overshoot the limit.
    if (this.#rooms.size + this.#creating.size >= this.config.limits.maxRooms) throw new AppError('AT_CAPACITY', `too many rooms (${this.config.limits.maxRooms})`);
    const creating = Room.create({ id: roomId, config: this.config, logger: this.logger, metrics: this.metrics }).then((room) => {
      if (this.#closed) {
        // close() ran while this room was being created: don't leave it open behind a closed manager.
        room.close();
        throw new InvalidStateError('room manager closed');
      }
      this.#rooms.set(roomId, room);
      room.on('close', () => {
        if (this.#rooms.get(roomId) === room) this.#rooms.delete(roomId);
      });
      return room;
    });
    this.#creating.set(roomId, creating);
    try {
      return await creating;
    } finally {
      this.#creating.delete(roomId);
    }
  }

  list(): RoomSummary[] {
    return [...this.#rooms.values()].map((r) => ({ roomId: r.id, peers: r.peers.size, createdAt: new Date(r.createdAt).toISOString() }));
  }

  /** Idempotent; closes every room. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const room of [...this.#rooms.values()]) room.close();
  }
}
