/**
 * Entry of a render thread (started by RenderThread.ts through models/worker-bootstrap.mjs): owns one
 * session's generator, renders each request's views in one batch (the generator's renderViews when
 * it has one, else render() per view) and transfers the frames back. Frame work never runs on the
 * worker's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { loadGeneratorFactory, type GeneratorFactory, type GeneratorModule } from '../generator/registry.ts';
import type { AvatarGenerator, RenderedFrame } from '../generator/generator.ts';
import type { FromRenderThread, ThreadFrame, ToRenderThread } from './renderMessages.ts';

const port = parentPort;
if (!port) throw new Error('renderThreadMain.ts runs in a worker thread');
let generator: AvatarGenerator | undefined;
/** The generator module this thread imported (a 'load' ahead of 'init'), by module URL. */
let factory: { module: string; exportName: string; pending: Promise<GeneratorFactory> } | undefined;

function factoryOf(m: GeneratorModule): Promise<GeneratorFactory> {
  if (!factory || factory.module !== m.module || factory.exportName !== m.exportName) factory = { module: m.module, exportName: m.exportName, pending: loadGeneratorFactory(m) };
  return factory.pending;
}

function post(msg: FromRenderThread, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

port.on('message', (msg: ToRenderThread) => {
  if (msg.type === 'close') {
    generator?.close();
    generator = undefined;
    port.close();
    return;
  }
  if (msg.type === 'load') {
    factoryOf(msg.generator).then(
      () => post({ type: 'loaded' }),
      (err: unknown) => post({ type: 'error', id: null, message: (err as Error)?.message ?? String(err) }),
    );
    return;
  }
  if (msg.type === 'init') {
    void (async () => {
      try {
        const g = (await factoryOf(msg.generator))();
        await g.initialize(msg.source);
        generator = g;
        post({ type: 'ready', capabilities: g.capabilities, batch: typeof g.renderViews === 'function' });
      } catch (err) {
        post({ type: 'error', id: null, message: (err as Error)?.message ?? String(err) });
      }
    })();
    return;
  }
  const g = generator;
  if (!g) return post({ type: 'error', id: msg.id, message: 'render thread: generator not initialised' });
  try {
    const t0 = performance.now();
    const reuse = msg.reuse.map((r): RenderedFrame | undefined => (r ? { width: msg.size, height: msg.size, ...r, renderMs: 0 } : undefined));
    const out = { size: msg.size, format: msg.format };
    const rendered = g.renderViews
      ? g.renderViews(msg.motion, msg.views, { ...out, reuse })
      : msg.views.map((v, i) => g.render(msg.motion, v, { ...out, ...(reuse[i] ? { reuse: reuse[i] } : {}) }));
    const frames: ThreadFrame[] = [];
    const transfer = new Set<ArrayBuffer>();
    for (const f of rendered) {
      const frame: ThreadFrame = { width: f.width, height: f.height, renderMs: f.renderMs };
      if (f.i420) {
        frame.i420 = f.i420;
        transfer.add(f.i420.buffer as ArrayBuffer);
      }
      if (f.rgba && msg.format !== 'i420') {
        frame.rgba = f.rgba;
        transfer.add(f.rgba.buffer as ArrayBuffer);
      }
      frames.push(frame);
    }
    post({ type: 'frames', id: msg.id, frames, batchMs: performance.now() - t0 }, [...transfer]);
  } catch (err) {
    post({ type: 'error', id: msg.id, message: (err as Error)?.message ?? String(err) });
  }
});
