/**
 * Frame index stamped into synthetic camera clips (see drivingVideo.ts) so that a browser test can
 * tell exactly which clip frame a tracker analysed, whatever the fake camera's timing does.
 *
 * Layout: a row of 16 square blocks of BLOCK px in the bottom-left corner (x = MARGIN, y = height −
 * MARGIN − BLOCK), gray levels only: white = 1, black = 0, bit 0 leftmost. Bits 0–11: frame index,
 * bits 12–15: popcount(index) & 15 as a check. Pure TS (Node and browser).
 */
export const FRAME_CODE = { bits: 16, indexBits: 12, block: 10, margin: 4, on: 235, off: 16 } as const;

export function frameCodeBits(index: number): number[] {
  if (!Number.isInteger(index) || index < 0 || index >= 1 << FRAME_CODE.indexBits) throw new Error(`frame index ${index} out of range`);
  let pop = 0;
  for (let v = index; v; v >>= 1) pop += v & 1;
  const word = index | ((pop & 15) << FRAME_CODE.indexBits);
  return Array.from({ length: FRAME_CODE.bits }, (_, i) => (word >> i) & 1);
}

/** Region covered by the code in a frame of the given height: [x, y, width, height]. */
export function frameCodeRect(height: number): [number, number, number, number] {
  const { block, margin, bits } = FRAME_CODE;
  return [margin, height - margin - block, bits * block, block];
}

/**
 * Decode from a luma sampler over the code rectangle (coordinates relative to its top-left);
 * null when the check bits do not match (e.g. a frame without a code).
 */
export function decodeFrameCode(lumaAt: (x: number, y: number) => number): number | null {
  const { block, bits, indexBits } = FRAME_CODE;
  let word = 0;
  for (let i = 0; i < bits; i++) {
    const v = lumaAt(i * block + (block >> 1), block >> 1);
    if (v > 128) word |= 1 << i;
  }
  const index = word & ((1 << indexBits) - 1);
  let pop = 0;
  for (let v = index; v; v >>= 1) pop += v & 1;
  return word >>> indexBits === (pop & 15) ? index : null;
}
