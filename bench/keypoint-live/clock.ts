/** Clocks of the keypoint bench's live phases: Node's epoch time and its offset to a page's. */
import type { CallPage } from '../../test/helpers/callPage.ts';

export const epochNow = (): number => performance.timeOrigin + performance.now();

/** Offset (page epoch − Node epoch) in ms, from the round trip with the smallest delay. */
export async function clockOffset(page: CallPage): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Infinity };
  for (let i = 0; i < 25; i++) {
    const t0 = epochNow();
    const p = await page.page.evaluate(() => performance.timeOrigin + performance.now());
    const t1 = epochNow();
    if (t1 - t0 < best.rttMs) best = { offsetMs: p - (t0 + t1) / 2, rttMs: t1 - t0 };
  }
  return best;
}
