/**
 * audio2motion network definition shared by training and export, and its ONNX graph (onnx-proto).
 *
 * Input  "features" float32 [N, W, 41]: W = past + 1 + future consecutive raw feature frames
 *        (features.ts layout), the frame being predicted at index `past`.
 * Graph  x̂ = (x − mean) · invStd                                    (per feature)
 *        h1 = relu(x̂ · W1 + b1)              [N, W, H1]             (shared per-frame projection)
 *        h2 = relu(flatten(h1) · W2 + b2)    [N, H2]
 *        h3 = relu(h2 · W3 + b3)             [N, H3]
 * Output "mouth"   [N, 3]  tanh(h3 · Wm + bm): jawOpen, mouthWide, smile (expression-code units)
 *        "viseme"  [N, 15] softmax(h3 · Wv + bv): visemes.ts VISEMES order
 *        "voiced"  [N, 1]  sigmoid(h3 · Ws + bs): probability that the frame is inside speech
 */
import onnxProto from 'onnx-proto';
import { FEATURE_DIM } from './features.ts';
import { NUM_VISEMES } from './visemes.ts';

const { onnx } = onnxProto;

export interface ArchConfig {
  past: number;
  future: number;
  h1: number;
  h2: number;
  h3: number;
}

export interface Weights {
  arch: ArchConfig;
  mean: Float32Array;
  invStd: Float32Array;
  w1: Float32Array; b1: Float32Array;
  w2: Float32Array; b2: Float32Array;
  w3: Float32Array; b3: Float32Array;
  wm: Float32Array; bm: Float32Array;
  wv: Float32Array; bv: Float32Array;
  ws: Float32Array; bs: Float32Array;
}

export function windowFrames(a: ArchConfig): number {
  return a.past + 1 + a.future;
}

/** [name, rows, cols] of every matrix (bias: rows = 1) */
export function weightShapes(a: ArchConfig): Array<[keyof Weights, number, number]> {
  const W = windowFrames(a);
  return [
    ['w1', FEATURE_DIM, a.h1], ['b1', 1, a.h1],
    ['w2', W * a.h1, a.h2], ['b2', 1, a.h2],
    ['w3', a.h2, a.h3], ['b3', 1, a.h3],
    ['wm', a.h3, 3], ['bm', 1, 3],
    ['wv', a.h3, NUM_VISEMES], ['bv', 1, NUM_VISEMES],
    ['ws', a.h3, 1], ['bs', 1, 1],
  ];
}

export function parameterCount(a: ArchConfig): number {
  return weightShapes(a).reduce((s, [, r, c]) => s + r * c, 0);
}

function tensor(name: string, dims: number[], data: Float32Array | BigInt64Array): onnxProto.onnx.ITensorProto {
  const isF = data instanceof Float32Array;
  const bytes = new Uint8Array(data.byteLength);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) {
    if (isF) dv.setFloat32(i * 4, (data as Float32Array)[i], true);
    else dv.setBigInt64(i * 8, (data as BigInt64Array)[i], true);
  }
  return { name, dims, dataType: isF ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64, rawData: bytes };
}

function valueInfo(name: string, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function node(op: string, inputs: string[], outputs: string[], attrs: onnxProto.onnx.IAttributeProto[] = []): onnxProto.onnx.INodeProto {
  return { opType: op, input: inputs, output: outputs, name: outputs[0], attribute: attrs };
}

/** Serialises the network to ONNX (opset 13, IR 7). */
export function exportOnnx(w: Weights, docString = ''): Uint8Array {
  const a = w.arch;
  const W = windowFrames(a);
  const inits: onnxProto.onnx.ITensorProto[] = [
    tensor('mean', [FEATURE_DIM], w.mean),
    tensor('invStd', [FEATURE_DIM], w.invStd),
    tensor('flatShape', [2], BigInt64Array.from([-1n, BigInt(W * a.h1)])),
  ];
  for (const [name, r, c] of weightShapes(a)) inits.push(tensor(name, r === 1 ? [c] : [r, c], w[name] as Float32Array));
  const nodes = [
    node('Sub', ['features', 'mean'], ['xc']),
    node('Mul', ['xc', 'invStd'], ['xn']),
    node('MatMul', ['xn', 'w1'], ['p1']),
    node('Add', ['p1', 'b1'], ['a1']),
    node('Relu', ['a1'], ['h1']),
    node('Reshape', ['h1', 'flatShape'], ['f1']),
    node('MatMul', ['f1', 'w2'], ['p2']),
    node('Add', ['p2', 'b2'], ['a2']),
    node('Relu', ['a2'], ['h2']),
    node('MatMul', ['h2', 'w3'], ['p3']),
    node('Add', ['p3', 'b3'], ['a3']),
    node('Relu', ['a3'], ['h3']),
    node('MatMul', ['h3', 'wm'], ['pm']),
    node('Add', ['pm', 'bm'], ['am']),
    node('Tanh', ['am'], ['mouth']),
    node('MatMul', ['h3', 'wv'], ['pv']),
    node('Add', ['pv', 'bv'], ['av']),
    node('Softmax', ['av'], ['viseme'], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }]),
    node('MatMul', ['h3', 'ws'], ['ps']),
    node('Add', ['ps', 'bs'], ['as']),
    node('Sigmoid', ['as'], ['voiced']),
  ];
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'avatar-sfu audio2motion',
    producerVersion: '1',
    docString,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'audio2motion',
      node: nodes,
      initializer: inits,
      input: [valueInfo('features', ['N', W, FEATURE_DIM])],
      output: [valueInfo('mouth', ['N', 3]), valueInfo('viseme', ['N', NUM_VISEMES]), valueInfo('voiced', ['N', 1])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
