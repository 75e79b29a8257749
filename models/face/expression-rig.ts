/**
 * Inverse mapping of the expression code: coefficients → head-space landmark displacements of a
 * given (source) face, which the renderer warps the photo's mesh with.
 */
import {
  BROW_ALL_L, BROW_ALL_R, EYE_LOWER0_L, EYE_LOWER0_R, EYE_LOWER1_L, EYE_LOWER1_R, EYE_UPPER0_L, EYE_UPPER0_R,
  EYE_UPPER1_L, EYE_UPPER1_R, EYE_UPPER2_L, EYE_UPPER2_R, IDX, IRIS_L, IRIS_R, LANDMARK_COUNT,
  LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_LOWER_SEMI, LIPS_UPPER_INNER, LIPS_UPPER_OUTER, LIPS_UPPER_SEMI,
  MOUTH_CORNER_L, MOUTH_CORNER_R, SILHOUETTE,
} from './landmark-indices.ts';
import { EXPR, EXPRESSION_SCALE, EXPRESSION_SIZE, F_GAP, measureFeatures } from './expression-features.ts';

/**
 * Displacement rig built once from the source face's head-space landmarks.
 * Linear blendshapes (separate bases for positive and negative coefficients) for everything but
 * the jaw, which is a weighted rotation about a pivot below the ears (so the chin swings down and
 * back instead of sliding). Bases are defined in head-space units on the source's own geometry,
 * so e.g. blink = 1 exactly closes *this* face's eyes and jawOpen = 1 opens *this* mouth 0.45 IOD.
 */
export interface ExpressionRig {
  neutral: Float32Array;
  /** per coefficient: 478×3 displacement for coefficient +1 and −1 (null = none) */
  pos: (Float32Array | null)[];
  neg: (Float32Array | null)[];
  /** per-vertex jaw weight 0..1 */
  jawWeight: Float32Array;
  /** mouth-corner vertices: they drop by exactly half of the lower lip's drop */
  jawCorners: Uint16Array;
  jawPivot: [number, number];
  /** head-space pivot of head rotation (between the ears, at the neck) */
  headPivot: [number, number, number];
  /** source features (for reference) */
  features: Float32Array;
}

const N = LANDMARK_COUNT;

/** Spread anchor displacements to other vertices (Shepard average × nearest-anchor Gaussian falloff). */
function spread(h: Float32Array, anchors: Map<number, [number, number, number]>, sigma: number, only?: (i: number) => boolean): Float32Array {
  const out = new Float32Array(N * 3);
  const idx = [...anchors.keys()];
  const s2 = 1 / (2 * sigma * sigma);
  for (let v = 0; v < 468; v++) { // iris points (468..477) only move with gaze
    const a = anchors.get(v);
    if (a) {
      out[v * 3] = a[0]; out[v * 3 + 1] = a[1]; out[v * 3 + 2] = a[2];
      continue;
    }
    if (only && !only(v)) continue;
    let ws = 0, wmax = 0, dx = 0, dy = 0, dz = 0;
    for (const i of idx) {
      const d2 = (h[v * 3] - h[i * 3]) ** 2 + (h[v * 3 + 1] - h[i * 3 + 1]) ** 2 + (h[v * 3 + 2] - h[i * 3 + 2]) ** 2;
      const w = Math.exp(-d2 * s2);
      const d = anchors.get(i)!;
      ws += w; dx += w * d[0]; dy += w * d[1]; dz += w * d[2];
      if (w > wmax) wmax = w;
    }
    if (ws > 1e-12) {
      out[v * 3] = (dx / ws) * wmax; out[v * 3 + 1] = (dy / ws) * wmax; out[v * 3 + 2] = (dz / ws) * wmax;
    }
  }
  return out;
}

/** Build the rig for a source face given its head-space landmarks (478×3). */
export function createExpressionRig(h: Float32Array): ExpressionRig {
  const X = (i: number) => h[i * 3], Y = (i: number) => h[i * 3 + 1], Z = (i: number) => h[i * 3 + 2];
  const pos: (Float32Array | null)[] = new Array(EXPRESSION_SIZE).fill(null);
  const neg: (Float32Array | null)[] = new Array(EXPRESSION_SIZE).fill(null);
  const S = EXPRESSION_SCALE;
  const features = measureFeatures(h);
  const set = (m: Map<number, [number, number, number]>, ids: readonly number[], d: [number, number, number]) => {
    for (const i of ids) m.set(i, d);
  };
  const zero: [number, number, number] = [0, 0, 0];
  const upperLips = [...LIPS_UPPER_OUTER, ...LIPS_UPPER_INNER, ...LIPS_UPPER_SEMI];
  const lowerLips = [...LIPS_LOWER_OUTER, ...LIPS_LOWER_INNER, ...LIPS_LOWER_SEMI];
  const allLips = [...new Set([...upperLips, ...lowerLips])];
  const noseAnchors = [1, 2, 4, 5, 6, 168, 98, 327, 19, 94];
  const eyesAnchors = [...EYE_LOWER0_L, ...EYE_LOWER0_R, ...EYE_UPPER0_L, ...EYE_UPPER0_R];
  const mouthCx = (X(61) + X(291)) / 2;
  const halfW = Math.max(1e-3, (X(291) - X(61)) / 2);

  // --- jaw: per-vertex rotation weight ---
  const jawWeight = new Float32Array(N);
  const midY = (Y(13) + Y(14)) / 2;
  const lowerSet = new Set(lowerLips), upperSet = new Set(upperLips);
  const cornerSet = new Set([...MOUTH_CORNER_L, ...MOUTH_CORNER_R]);
  const chinY = Y(IDX.chin);
  for (let v = 0; v < 468; v++) {
    let w: number;
    if (cornerSet.has(v)) w = 0; // corners: moved explicitly by half the lip drop (see applyExpression)
    else if (lowerSet.has(v)) w = 1;
    else if (upperSet.has(v)) w = 0;
    else {
      const t = (Y(v) - (midY - 0.05)) / Math.max(0.05, (chinY - midY) * 0.45);
      w = t <= 0 ? 0 : t >= 1 ? 1 : t * t * (3 - 2 * t);
      // the jaw hinge sits at the sides: far-lateral points above the chin line move less
      const lat = Math.abs(X(v) - mouthCx) / Math.max(1e-3, Math.abs(X(IDX.cheekL) - X(IDX.cheekR)) / 2);
      if (lat > 0.75) w *= Math.max(0.35, 1 - (lat - 0.75) * 2);
    }
    jawWeight[v] = w;
  }
  const earY = (Y(IDX.cheekL) + Y(IDX.cheekR)) / 2, earZ = (Z(IDX.cheekL) + Z(IDX.cheekR)) / 2;
  const jawPivot: [number, number] = [earY + 0.1, earZ + 0.35];

  // --- mouthWide ---
  {
    const m = new Map<number, [number, number, number]>();
    for (const i of allLips) m.set(i, [(S.mouthWide / 2) * Math.max(-1, Math.min(1, (X(i) - mouthCx) / halfW)), 0, 0]);
    set(m, noseAnchors, zero);
    set(m, eyesAnchors, zero);
    set(m, [IDX.chin, 152, 175, 199], zero);
    pos[EXPR.mouthWide] = spread(h, m, 0.22);
    const mn = new Map<number, [number, number, number]>();
    for (const i of allLips) {
      const r = Math.max(-1, Math.min(1, (X(i) - mouthCx) / halfW));
      mn.set(i, [(-S.mouthWide / 2) * r, 0, -0.06 * (1 - r * r) - 0.02]);
    }
    set(mn, noseAnchors, zero);
    set(mn, eyesAnchors, zero);
    set(mn, [IDX.chin, 175, 199], zero);
    neg[EXPR.mouthWide] = spread(h, mn, 0.22);
    // stored as the displacement for coefficient −1
  }
  // --- smile / frown (vertical corner lift), smileAsym ---
  const cornerLift = (sideL: number, sideR: number, sigma = 0.2) => {
    const m = new Map<number, [number, number, number]>();
    // inner lip midline fixed; the corners move; lip points in between follow with |x| weight
    for (const i of allLips) {
      const r = (X(i) - mouthCx) / halfW;
      const a = Math.min(1, Math.abs(r)) ** 2;
      const s = r >= 0 ? sideL : sideR;
      m.set(i, [0, -S.smile * s * a, 0]);
    }
    set(m, [13, 14], zero);
    set(m, noseAnchors, zero);
    set(m, eyesAnchors, zero);
    set(m, [IDX.chin, 175, 199], zero);
    return spread(h, m, sigma);
  };
  pos[EXPR.smile] = cornerLift(1, 1);
  neg[EXPR.smile] = cornerLift(-1, -1);
  pos[EXPR.smileAsym] = cornerLift(1, -1);
  neg[EXPR.smileAsym] = cornerLift(-1, 1);
  // --- mouthShiftX ---
  {
    const m = new Map<number, [number, number, number]>();
    set(m, allLips, [S.mouthShiftX, 0, 0]);
    set(m, noseAnchors, zero);
    set(m, eyesAnchors, zero);
    set(m, [...SILHOUETTE], zero);
    pos[EXPR.mouthShiftX] = spread(h, m, 0.25);
    neg[EXPR.mouthShiftX] = pos[EXPR.mouthShiftX]!.map((x) => -x);
  }
  // --- blinks ---
  const blink = (upper0: number[], lower0: number[], upper1: number[], upper2: number[], lower1: number[], widen: boolean) => {
    const m = new Map<number, [number, number, number]>();
    // lower-lid y as a function of x (piecewise linear over lower0)
    const lower = lower0.map((i) => [X(i), Y(i), Z(i)]).sort((a, b) => a[0] - b[0]);
    const lowerAt = (x: number) => {
      if (x <= lower[0][0]) return lower[0][1];
      for (let k = 1; k < lower.length; k++) {
        if (x <= lower[k][0]) {
          const t = (x - lower[k - 1][0]) / Math.max(1e-6, lower[k][0] - lower[k - 1][0]);
          return lower[k - 1][1] + t * (lower[k][1] - lower[k - 1][1]);
        }
      }
      return lower[lower.length - 1][1];
    };
    const upper = upper0.map((i) => [X(i), Y(i)]).sort((a, b) => a[0] - b[0]);
    const upperAt = (x: number) => {
      if (x <= upper[0][0]) return upper[0][1];
      for (let k = 1; k < upper.length; k++) {
        if (x <= upper[k][0]) {
          const t = (x - upper[k - 1][0]) / Math.max(1e-6, upper[k][0] - upper[k - 1][0]);
          return upper[k - 1][1] + t * (upper[k][1] - upper[k - 1][1]);
        }
      }
      return upper[upper.length - 1][1];
    };
    const corners = [lower0[0], lower0[lower0.length - 1]];
    const cornerSetE = new Set(corners);
    if (!widen) {
      for (const i of upper0) m.set(i, [0, 0.85 * Math.max(0, lowerAt(X(i)) - Y(i)), 0]);
      for (const i of lower0) if (!cornerSetE.has(i)) m.set(i, [0, -0.15 * Math.max(0, Y(i) - upperAt(X(i))), 0]);
      for (const i of upper1) m.set(i, [0, 0.45 * 0.85 * Math.max(0, lowerAt(X(i)) - upperAt(X(i))), 0]);
      for (const i of upper2) m.set(i, [0, 0.12 * 0.85 * Math.max(0, lowerAt(X(i)) - upperAt(X(i))), 0]);
    } else {
      for (const i of upper0) m.set(i, [0, -S.eyeWiden * Math.max(0, lowerAt(X(i)) - Y(i)), 0]);
      for (const i of lower0) if (!cornerSetE.has(i)) m.set(i, zero);
      for (const i of upper1) m.set(i, [0, -0.5 * S.eyeWiden * Math.max(0, lowerAt(X(i)) - upperAt(X(i))), 0]);
      for (const i of upper2) m.set(i, zero);
    }
    set(m, corners, zero);
    set(m, lower1, zero);
    const sideSet = new Set([...upper0, ...lower0, ...upper1, ...upper2, ...lower1]);
    return spread(h, m, 0.05, (i) => sideSet.has(i));
  };
  pos[EXPR.blinkL] = blink(EYE_UPPER0_L, EYE_LOWER0_L, EYE_UPPER1_L, EYE_UPPER2_L, EYE_LOWER1_L, false);
  neg[EXPR.blinkL] = blink(EYE_UPPER0_L, EYE_LOWER0_L, EYE_UPPER1_L, EYE_UPPER2_L, EYE_LOWER1_L, true);
  pos[EXPR.blinkR] = blink(EYE_UPPER0_R, EYE_LOWER0_R, EYE_UPPER1_R, EYE_UPPER2_R, EYE_LOWER1_R, false);
  neg[EXPR.blinkR] = blink(EYE_UPPER0_R, EYE_LOWER0_R, EYE_UPPER1_R, EYE_UPPER2_R, EYE_LOWER1_R, true);
  // --- brows ---
  const brow = (browPts: number[], upper2: number[], upper1: number[], lower0: number[], upper0: number[], sign: number) => {
    const m = new Map<number, [number, number, number]>();
    set(m, browPts, [0, -S.brow * sign, 0]);
    set(m, upper2, [0, -0.4 * S.brow * sign, 0]);
    set(m, upper1, [0, -0.1 * S.brow * sign, 0]);
    set(m, lower0, zero);
    set(m, upper0, zero);
    set(m, noseAnchors, zero);
    return spread(h, m, 0.18);
  };
  pos[EXPR.browL] = brow(BROW_ALL_L, EYE_UPPER2_L, EYE_UPPER1_L, EYE_LOWER0_L, EYE_UPPER0_L, 1);
  neg[EXPR.browL] = brow(BROW_ALL_L, EYE_UPPER2_L, EYE_UPPER1_L, EYE_LOWER0_L, EYE_UPPER0_L, -1);
  pos[EXPR.browR] = brow(BROW_ALL_R, EYE_UPPER2_R, EYE_UPPER1_R, EYE_LOWER0_R, EYE_UPPER0_R, 1);
  neg[EXPR.browR] = brow(BROW_ALL_R, EYE_UPPER2_R, EYE_UPPER1_R, EYE_LOWER0_R, EYE_UPPER0_R, -1);
  // --- furrow: inner brows move towards the midline and down ---
  {
    const m = new Map<number, [number, number, number]>();
    const innerL = [336, 296, 285, 295, 282], innerR = [107, 66, 55, 65, 52];
    set(m, innerL, [-S.browFurrow / 2, 0, 0]);
    set(m, innerR, [S.browFurrow / 2, 0, 0]);
    set(m, [300, 383, 70, 156], zero);
    set(m, [...EYE_UPPER0_L, ...EYE_UPPER0_R, ...EYE_LOWER0_L, ...EYE_LOWER0_R], zero);
    set(m, noseAnchors, zero);
    pos[EXPR.browFurrow] = spread(h, m, 0.12);
    neg[EXPR.browFurrow] = pos[EXPR.browFurrow]!.map((x) => -x);
  }
  // --- gaze: irises only (the renderer slides the eye texture) ---
  for (const [k, dx, dy] of [[EXPR.gazeX, 1, 0], [EXPR.gazeY, 0, 1]] as const) {
    const b = new Float32Array(N * 3);
    const wl = Math.hypot(X(263) - X(362), Y(263) - Y(362)), wr = Math.hypot(X(33) - X(133), Y(33) - Y(133));
    for (const i of IRIS_L) { b[i * 3] = dx * S.gazeX * wl; b[i * 3 + 1] = dy * S.gazeY * wl; }
    for (const i of IRIS_R) { b[i * 3] = dx * S.gazeX * wr; b[i * 3 + 1] = dy * S.gazeY * wr; }
    pos[k] = b;
    neg[k] = b.map((x) => -x);
  }
  const headPivot: [number, number, number] = [0, Y(IDX.noseBottom) + 0.3, earZ + 0.45];
  return { neutral: h.slice(), pos, neg, jawWeight, jawCorners: Uint16Array.from(cornerSet), jawPivot, headPivot, features };
}

/**
 * Apply an expression to the rig's neutral head-space points. Writes 478×3 into `out`.
 * jawOpen moves the inner-lip gap by jawOpen × 0.45 IOD (the target gap is kept ≥ 0).
 */
export function applyExpression(rig: ExpressionRig, expr: ArrayLike<number>, out = new Float32Array(N * 3)): Float32Array {
  const h = rig.neutral;
  out.set(h);
  for (let k = 0; k < EXPRESSION_SIZE; k++) {
    if (k === EXPR.jawOpen) continue;
    const c = expr[k];
    if (!c) continue;
    const b = c > 0 ? rig.pos[k] : rig.neg[k];
    if (!b) continue;
    const a = Math.abs(c);
    for (let i = 0; i < N * 3; i++) out[i] += a * b[i];
  }
  // jaw: rotation about the x axis through (pivotY, pivotZ) by angle θ·w; θ chosen so the lower
  // inner lip (14) drops by the requested amount.
  let drop = (expr[EXPR.jawOpen] || 0) * EXPRESSION_SCALE.jawOpen;
  const gap0 = rig.features[F_GAP];
  if (gap0 + drop < 0) drop = -gap0;
  if (drop !== 0) {
    const [py, pz] = rig.jawPivot;
    const dy = h[14 * 3 + 1] - py, dz = h[14 * 3 + 2] - pz;
    // dy·cosθ − dz·sinθ = dy + drop: solve with Newton iterations
    let th = drop / Math.max(1e-3, Math.hypot(dy, dz));
    for (let it = 0; it < 4; it++) {
      const f = dy * Math.cos(th) - dz * Math.sin(th) - dy - drop;
      const df = -dy * Math.sin(th) - dz * Math.cos(th);
      if (Math.abs(df) < 1e-9) break;
      th -= f / df;
    }
    const w = rig.jawWeight;
    const y14 = out[14 * 3 + 1];
    for (let v = 0; v < 468; v++) {
      const wv = w[v];
      if (wv === 0) continue;
      const t = th * wv, c = Math.cos(t), s = Math.sin(t);
      const y = out[v * 3 + 1] - py, z = out[v * 3 + 2] - pz;
      out[v * 3 + 1] = py + y * c - z * s;
      out[v * 3 + 2] = pz + y * s + z * c;
    }
    const half = (out[14 * 3 + 1] - y14) / 2;
    for (const v of rig.jawCorners) out[v * 3 + 1] += half;
  }
  return out;
}
