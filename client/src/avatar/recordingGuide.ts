/**
 * The personal-avatar recorder's on-screen guide: prompts shown in turn over the recording, so the
 * clip holds what the Gaussian head learns from (expressions, blinks, speech, a little head turn).
 */
export const RECORDING_GUIDE: readonly string[] = Object.freeze([
  'Look at the camera',
  'Talk: count from one to ten',
  'Smile',
  'Raise your eyebrows',
  'Blink a few times',
  'Turn your head a little left…',
  '…and a little right',
  'Nod slowly',
]);

/** The prompt to show when `done` of `total` frames are recorded. */
export function guidePrompt(done: number, total: number): string {
  const i = Math.min(RECORDING_GUIDE.length - 1, Math.max(0, Math.floor((done / Math.max(1, total)) * RECORDING_GUIDE.length)));
  return RECORDING_GUIDE[i]!;
}
