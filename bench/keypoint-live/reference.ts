/** Reference renders of the keypoint bench: the worker's generator on the same identity. */
import { MeshAvatarGenerator } from '../../worker/src/generator/mesh-generator.ts';
import type { AvatarGenerator, AvatarMotion, GeneratorSource, ViewOffset } from '../../worker/src/generator/generator.ts';
import { cropPlane, type Box } from '../keypoint-util.ts';

/** Reference renders with the worker's generator and identity (same size, default options). */
export class ReferenceRenderer {
  private constructor(readonly gen: AvatarGenerator, readonly size: number) {}

  /** `source`: the enrolled identity (mesh generator, the default) or the generator's asset. */
  static async create(source: GeneratorSource, size: number, gen: AvatarGenerator = new MeshAvatarGenerator()): Promise<ReferenceRenderer> {
    const r = new ReferenceRenderer(gen, size);
    await r.gen.initialize(source);
    return r;
  }

  /** Luma of the rendered frame, cropped to `box`. */
  luma(motion: AvatarMotion, view: ViewOffset | undefined, box: Box): Uint8Array {
    const fr = this.gen.render(motion, view, { size: this.size, format: 'i420' });
    return cropPlane(fr.i420!, this.size, this.size, box);
  }

  close(): void {
    this.gen.close();
  }
}
