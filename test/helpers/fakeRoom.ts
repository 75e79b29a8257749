/**
 * Stand-ins for a room and its peers with just what AvatarService touches (participants, slots,
 * delegates, attributes), for unit tests of the avatar layer without WebRTC.
 */
import { EventEmitter } from 'node:events';
import type { Peer } from '../../server/src/rooms/Peer.ts';
import type { Room } from '../../server/src/rooms/Room.ts';

export function fakePeer(id: string): Peer {
  const p = Object.assign(new EventEmitter(), { id, displayName: id, role: 'participant', closed: false, attributes: {}, producers: [], dataProducers: [], sendTransport: { setAudioPtime: () => undefined } });
  return p as unknown as Peer;
}

export function fakeRoom(id: string, participants: Peer[]): Room {
  const slots = new Map<Peer, Map<string, string>>();
  return Object.assign(new EventEmitter(), {
    id,
    closed: false,
    participants,
    delegatesOf: () => [],
    stopPresenting: () => undefined,
    setSlot: (viewer: Peer, owner: Peer, slot: string | undefined) => {
      if (!slots.has(viewer)) slots.set(viewer, new Map());
      if (slot === undefined) slots.get(viewer)!.delete(owner.id);
      else slots.get(viewer)!.set(owner.id, slot);
    },
    slotOf: (viewer: Peer, owner: Peer) => slots.get(viewer)?.get(owner.id),
  }) as unknown as Room;
}
