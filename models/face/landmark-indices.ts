/**
 * Landmark index tables of Human's face mesh (MediaPipe 468 topology + 10 iris points): the
 * named points and point sets that the expression code measures (expression-features.ts), the
 * pose solver uses (head-pose.ts) and the rig moves (expression-rig.ts).
 *
 * Sides: "L" is the subject's own left (image right when the camera is not mirrored).
 */

export const LANDMARK_COUNT = 478;

export const IDX = {
  eyeOuterR: 33, eyeInnerR: 133, eyeOuterL: 263, eyeInnerL: 362,
  cheekR: 234, cheekL: 454, foreheadTop: 10, noseBottom: 2, noseTip: 1, chin: 152,
  upperLipInner: 13, lowerLipInner: 14, mouthCornerR: 61, mouthCornerL: 291,
  irisL: 468, irisR: 473,
  browInnerR: 107, browInnerL: 336,
} as const;
/** inner-lip point pairs (upper, lower) whose gap measures jawOpen */
export const GAP_PAIRS = [[13, 14], [82, 87], [312, 317]] as const;
/** eyelid point pairs (upper, lower) whose gap measures each eye's opening */
export const EYE_PAIRS_L = [[386, 374], [385, 380], [387, 373]] as const;
export const EYE_PAIRS_R = [[159, 145], [158, 153], [160, 144]] as const;
/** brow points whose height above the eye corners measures browL / browR */
export const BROW_L = [293, 334, 296] as const;
export const BROW_R = [63, 105, 66] as const;

export const LIPS_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291];
export const LIPS_LOWER_OUTER = [146, 91, 181, 84, 17, 314, 405, 321, 375];
export const LIPS_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308];
export const LIPS_LOWER_INNER = [95, 88, 178, 87, 14, 317, 402, 318, 324];
export const LIPS_UPPER_SEMI = [76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306, 183, 42, 41, 38, 12, 268, 271, 272, 407, 62, 292];
export const LIPS_LOWER_SEMI = [77, 90, 180, 85, 16, 315, 404, 320, 307, 96, 89, 179, 86, 15, 316, 403, 319, 325];
/** inner-lip loop in order (boundary of the mesh's mouth hole) */
export const INNER_LIP_LOOP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95];
export const MOUTH_CORNER_R = [61, 62, 76, 78];
export const MOUTH_CORNER_L = [291, 292, 306, 308];
export const EYE_UPPER0_L = [466, 388, 387, 386, 385, 384, 398];
export const EYE_LOWER0_L = [263, 249, 390, 373, 374, 380, 381, 382, 362];
export const EYE_UPPER1_L = [467, 260, 259, 257, 258, 286, 414];
export const EYE_UPPER2_L = [342, 445, 444, 443, 442, 441, 413];
export const EYE_LOWER1_L = [359, 255, 339, 254, 253, 252, 256, 341, 463];
export const EYE_UPPER0_R = [246, 161, 160, 159, 158, 157, 173];
export const EYE_LOWER0_R = [33, 7, 163, 144, 145, 153, 154, 155, 133];
export const EYE_UPPER1_R = [247, 30, 29, 27, 28, 56, 190];
export const EYE_UPPER2_R = [113, 225, 224, 223, 222, 221, 189];
export const EYE_LOWER1_R = [130, 25, 110, 24, 23, 22, 26, 112, 243];
export const BROW_ALL_L = [383, 300, 293, 334, 296, 336, 285, 417, 265, 353, 276, 283, 282, 295];
export const BROW_ALL_R = [156, 70, 63, 105, 66, 107, 55, 193, 35, 124, 46, 53, 52, 65];
export const IRIS_L = [468, 469, 470, 471, 472];
export const IRIS_R = [473, 474, 475, 476, 477];
/** face outline loop (mesh boundary), clockwise on screen starting at the forehead top */
export const SILHOUETTE = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288,
  397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
  172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];
