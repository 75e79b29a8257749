/**
 * Reads an image's type and dimensions from its header without decoding it, so that oversized
 * photos (decompression bombs included) are refused before any pixel buffer is allocated.
 */

export type ImageType = 'image/png' | 'image/jpeg';

export interface ImageProbe {
  type: ImageType;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Type of the bytes by their signature, or null when neither PNG nor JPEG. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'image/png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  return null;
}

function probePng(b: Uint8Array): ImageProbe | null {
  // signature, then the first chunk must be IHDR: length (13), "IHDR", width, height (big-endian)
  if (b.length < 24) return null;
  if (b[12] !== 0x49 || b[13] !== 0x48 || b[14] !== 0x44 || b[15] !== 0x52) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const width = dv.getUint32(16), height = dv.getUint32(20);
  return width > 0 && height > 0 ? { type: 'image/png', width, height } : null;
}

function probeJpeg(b: Uint8Array): ImageProbe | null {
  let i = 2;
  while (i < b.length) {
    if (b[i] !== 0xff) return null;
    while (i < b.length && b[i] === 0xff) i++; // fill bytes
    if (i >= b.length) return null;
    const marker = b[i++];
    // markers without a length: TEM, RSTn, SOI, EOI
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) continue;
    if (i + 2 > b.length) return null;
    const len = (b[i] << 8) | b[i + 1];
    if (len < 2) return null;
    // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC): precision, height, width
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 7 > b.length) return null;
      const height = (b[i + 3] << 8) | b[i + 4];
      const width = (b[i + 5] << 8) | b[i + 6];
      return width > 0 && height > 0 ? { type: 'image/jpeg', width, height } : null;
    }
    if (marker === 0xda) return null; // start of scan before any frame header
    i += len;
  }
  return null;
}

/** Type and size from the header, or null when the bytes are not a PNG/JPEG with a readable header. */
export function probeImage(bytes: Uint8Array): ImageProbe | null {
  const type = sniffImageType(bytes);
  if (type === 'image/png') return probePng(bytes);
  if (type === 'image/jpeg') return probeJpeg(bytes);
  return null;
}
