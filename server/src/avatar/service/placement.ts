/**
 * Where an avatar session renders: identity → the assets it has → the generators that render them
 * (protocol/src/generators.ts) → a worker that registered one of those generators and has room.
 *
 * Generators are tried in order: the preferred one (the join's `avatar.generator`, else
 * AVATAR_GENERATOR) first, then the others in GENERATOR_KINDS order, leaving out those the session
 * excludes (their asset failed to load); the first with a worker that has room wins. Among those workers: not the one
 * to avoid (it just refused the session), then the least loaded (sessions / capacity), then one that
 * lists the session's size, then the cheapest frame.
 */
import { GENERATOR_ASSET, GENERATOR_KINDS, isGeneratorKind, type AssetKind, type GeneratorKind, type GeneratorOffer } from '../../../../protocol/src/generators.ts';

/** A registered worker as placement sees it. */
export interface PlacementWorker {
  id: string;
  /** sessions of every kind together */
  capacity: number;
  offers: ReadonlyMap<string, GeneratorOffer>;
  /** generator kind of each session it renders */
  sessionKinds: readonly string[];
}

export interface PlacementRequest {
  /** asset kinds the session's identity has */
  assets: readonly AssetKind[];
  preferred: GeneratorKind;
  size: number;
  /** a worker tried last (it just refused or failed the session) */
  avoid?: string;
  /** generators not to use for this session (a worker could not load their asset) */
  exclude?: readonly GeneratorKind[];
}

export interface Placement {
  workerId: string;
  generator: GeneratorKind;
}

/** Free-view limits (degrees) of an offer registered by name only: the product's (the mesh generator's). */
export const DEFAULT_VIEW_LIMITS_DEG = Object.freeze({ yaw: 30, pitch: 20, roll: 20 });

/** An offer for a worker that registered a kind by name only (older workers): `capacity` sessions of it. */
export function offerFromName(kind: string, capacity: number): GeneratorOffer {
  return { kind, sessions: capacity, frameCostMs: 0, gpu: false, sizes: [], maxViewDeg: { ...DEFAULT_VIEW_LIMITS_DEG } };
}

/** Generators that can render an identity with these assets, most wanted first. */
export function generatorsFor(assets: readonly AssetKind[], preferred: GeneratorKind, exclude: readonly GeneratorKind[] = []): GeneratorKind[] {
  const have = new Set(assets);
  const order = [preferred, ...GENERATOR_KINDS.filter((k) => k !== preferred)];
  return order.filter((k) => isGeneratorKind(k) && have.has(GENERATOR_ASSET[k]) && !exclude.includes(k));
}

/** Whether any of these workers registered `kind` (whatever its load). */
export function anyWorkerRenders(kind: GeneratorKind, workers: Iterable<PlacementWorker>): boolean {
  for (const w of workers) if (w.offers.has(kind)) return true;
  return false;
}

function hasRoom(w: PlacementWorker, kind: string): boolean {
  const offer = w.offers.get(kind);
  if (!offer || w.sessionKinds.length >= w.capacity) return false;
  return w.sessionKinds.filter((k) => k === kind).length < offer.sessions;
}

export function placeSession(req: PlacementRequest, workers: Iterable<PlacementWorker>): Placement | undefined {
  const all = [...workers];
  for (const generator of generatorsFor(req.assets, req.preferred, req.exclude)) {
    const candidates = all.filter((w) => hasRoom(w, generator));
    if (candidates.length === 0) continue;
    const lists = (w: PlacementWorker): number => (w.offers.get(generator)!.sizes.includes(req.size) ? 0 : 1);
    candidates.sort((a, b) =>
      (a.id === req.avoid ? 1 : 0) - (b.id === req.avoid ? 1 : 0)
      || a.sessionKinds.length / a.capacity - b.sessionKinds.length / b.capacity
      || lists(a) - lists(b)
      || a.offers.get(generator)!.frameCostMs - b.offers.get(generator)!.frameCostMs);
    return { workerId: candidates[0]!.id, generator };
  }
  return undefined;
}
