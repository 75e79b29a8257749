/**
 * Real face and speech sources for Firefox pages. Firefox's fake camera is a synthetic pattern and
 * its fake microphone a tone, and it has no --use-file-for-fake-video-capture. So the page's
 * getUserMedia is replaced before any page script runs (an init script):
 * - video: the driving clip (drivingVideo.ts, a rendered talking head with known motion), encoded
 *   once to VP8 WebM with ffmpeg and handed to the page as bytes; the page plays it in a looping
 *   muted <video> and draws it into a canvas whose captureStream() track is "the camera". Letting
 *   the browser decode the clip keeps the transfer to one ~0.5 MB string and the frame pacing to the
 *   page's own clock (pushing decoded frames from Node would be one round trip per frame).
 * - audio: a WAV decoded by an AudioContext, looped into a MediaStreamDestination.
 * A kind with no source given falls through to Firefox's own fake device.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'puppeteer-core';

/** Encode a .y4m (or any ffmpeg input) to VP8 WebM; returns the file's bytes. */
export async function encodeWebm(input: string): Promise<Buffer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avatar-ff-webm-'));
  const out = path.join(dir, 'clip.webm');
  await new Promise<void>((resolve, reject) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', input, '-c:v', 'libvpx', '-b:v', '1500k', '-deadline', 'good', '-an', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err}`))));
  });
  const bytes = fs.readFileSync(out);
  fs.rmSync(dir, { recursive: true, force: true });
  return bytes;
}

export interface FakeMediaSources {
  /** WebM bytes played as the camera */
  video?: Uint8Array;
  /** WAV bytes played (looped) as the microphone */
  audio?: Uint8Array;
  /** canvas side in pixels (default 320) */
  size?: number;
}

// Plain JS (not a serialised TS function: the test runner's transform would add helpers the page lacks).
const INIT_SCRIPT = String.raw`(() => {
  const cfg = __CFG__;
  const md = navigator.mediaDevices;
  if (!md || window.__fakeMediaInstalled) return;
  window.__fakeMediaInstalled = true;
  const orig = md.getUserMedia.bind(md);
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  let canvas = null;
  const camera = () => {
    if (!canvas) {
      const video = document.createElement('video');
      video.muted = true; video.loop = true; video.playsInline = true;
      video.src = URL.createObjectURL(new Blob([bytes(cfg.video)], { type: 'video/webm' }));
      canvas = document.createElement('canvas');
      canvas.width = cfg.size; canvas.height = cfg.size;
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#000'; ctx.fillRect(0, 0, cfg.size, cfg.size);
      video.play().catch((e) => console.warn('fake camera: play failed', e));
      window.__fakeCameraVideo = video;
      setInterval(() => { if (video.readyState >= 2) ctx.drawImage(video, 0, 0, cfg.size, cfg.size); }, 1000 / 30);
    }
    return canvas.captureStream(30).getVideoTracks()[0];
  };
  let audioCtx = null, audioDest = null;
  const microphone = async () => {
    if (!audioCtx) {
      audioCtx = new AudioContext();
      const buf = await audioCtx.decodeAudioData(bytes(cfg.audio).buffer);
      audioDest = audioCtx.createMediaStreamDestination();
      const src = audioCtx.createBufferSource();
      src.buffer = buf; src.loop = true; src.connect(audioDest); src.start();
      await audioCtx.resume();
    }
    return audioDest.stream.getAudioTracks()[0].clone();
  };
  md.getUserMedia = async (constraints) => {
    const c = constraints || {};
    const tracks = [];
    if (c.video && cfg.video) tracks.push(camera());
    if (c.audio && cfg.audio) tracks.push(await microphone());
    const rest = { video: cfg.video ? false : (c.video || false), audio: cfg.audio ? false : (c.audio || false) };
    if (rest.video || rest.audio) for (const t of (await orig(rest)).getTracks()) tracks.push(t);
    return new MediaStream(tracks);
  };
})();`;

/** Install the replaced getUserMedia for every document the page loads from now on. */
export async function installFakeMedia(page: Page, sources: FakeMediaSources): Promise<void> {
  const cfg = {
    video: sources.video ? Buffer.from(sources.video).toString('base64') : null,
    audio: sources.audio ? Buffer.from(sources.audio).toString('base64') : null,
    size: sources.size ?? 320,
  };
  await page.evaluateOnNewDocument(INIT_SCRIPT.replace('__CFG__', JSON.stringify(cfg)));
}
