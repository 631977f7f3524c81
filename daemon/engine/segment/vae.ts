// big_vision's PaliGemma mask VAE decoder (vae-oid.npz) as an ONNX graph.
//
// Reference: get_reconstruct_masks() in big_vision/evaluators/proj/paligemma/transfers/segmentation.py.
// The .npz holds PyTorch-layout weights; big_vision transposes them to Flax and runs
//   codebook[codes] -> [B,4,4,D] -> Conv1x1(128)+relu -> 2 x ResBlock(conv3x3, relu, conv3x3, relu,
//   conv1x1, + x) -> 4 x (ConvTranspose 4x4 stride 2, padding=2, transpose_kernel=True) + relu with
//   128, 64, 32, 16 channels -> Conv1x1(1) -> [B,64,64,1].
// Flax ConvTranspose with transpose_kernel=True is the gradient of a convolution, i.e. PyTorch's
// ConvTranspose2d on the original [in, out, kh, kw] weights; its explicit padding 2 pads the
// stride-dilated input, which is ONNX/PyTorch padding k - 1 - 2 = 1 (4 -> 8 -> 16 -> 32 -> 64).
// ONNX Conv and ConvTranspose take the PyTorch layouts as they are, so no weight is transposed.
import { readFileSync } from 'node:fs';
import { GraphBuilder, onnx } from '../onnx/builder.js';
import { parseNpz, toFloat32, type NpyArray } from './npz.js';
import { errorMessage } from '../../common/errors.js';

export const CODES_PER_MASK = 16;
const HIDDEN = 128;
const UPSAMPLE_CHANNELS = [128, 64, 32, 16];

export interface Tensor32 {
  dims: number[];
  data: Float32Array;
}

export interface VaeWeights {
  /** `_vq_vae._embedding`: [numCodes, embeddingDim]. */
  codebook: Tensor32;
  conv0: { weight: Tensor32; bias: Tensor32 };
  resBlocks: { weight: Tensor32; bias: Tensor32 }[][];
  upsample: { weight: Tensor32; bias: Tensor32 }[];
  convOut: { weight: Tensor32; bias: Tensor32 };
}

export class VaeFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaeFormatError';
  }
}

/** Reads and checks the weights of an .npz in vae-oid.npz's layout. */
export function readVaeNpz(path: string): VaeWeights {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new VaeFormatError(`cannot read ${path}: ${errorMessage(e)}`);
  }
  return vaeWeightsFromArrays(parseNpz(buf, path), path);
}

export function vaeWeightsFromArrays(arrays: Map<string, NpyArray>, source = 'archive'): VaeWeights {
  const get = (key: string, expected: (number | null)[]): Tensor32 => {
    const a = arrays.get(key);
    if (!a) throw new VaeFormatError(`${source}: missing array '${key}' (is this big_vision's vae-oid.npz?)`);
    const ok = a.shape.length === expected.length && expected.every((d, i) => d === null || d === a.shape[i]);
    if (!ok) {
      const want = expected.map((d) => (d === null ? '?' : d)).join(', ');
      throw new VaeFormatError(`${source}: '${key}' has shape [${a.shape.join(', ')}], expected [${want}]`);
    }
    return { dims: a.shape, data: toFloat32(a, `${source}:${key}`) };
  };
  const codebook = get('_vq_vae._embedding', [null, null]);
  const [numCodes, dim] = codebook.dims;
  if (numCodes < 128) throw new VaeFormatError(`${source}: codebook has ${numCodes} entries, PaliGemma uses 128 (<seg000>..<seg127>)`);
  const conv = (name: string, out: number, inp: number, k: number) => ({
    weight: get(`${name}.weight`, [out, inp, k, k]),
    bias: get(`${name}.bias`, [out]),
  });
  const resBlock = (i: number) => [conv(`decoder.${i}.net.0`, HIDDEN, HIDDEN, 3), conv(`decoder.${i}.net.2`, HIDDEN, HIDDEN, 3), conv(`decoder.${i}.net.4`, HIDDEN, HIDDEN, 1)];
  let inChannels = HIDDEN;
  const upsample = UPSAMPLE_CHANNELS.map((out, i) => {
    const name = `decoder.${4 + 2 * i}`;
    // Transposed convolutions store [in, out, kh, kw].
    const layer = { weight: get(`${name}.weight`, [inChannels, out, 4, 4]), bias: get(`${name}.bias`, [out]) };
    inChannels = out;
    return layer;
  });
  return {
    codebook,
    conv0: conv('decoder.0', HIDDEN, dim, 1),
    resBlocks: [resBlock(2), resBlock(3)],
    upsample,
    convOut: conv('decoder.12', 1, inChannels, 1),
  };
}

/**
 * The decoder graph: in `codes` int64 [B, 16] (values 0..127, i.e. `<segNNN>` minus `<seg000>`),
 * out `masks` float32 [B, 64, 64], about [-1, 1], > 0 inside the object.
 */
export function buildVaeDecoder(w: VaeWeights): GraphBuilder {
  const g = new GraphBuilder({ name: 'paligemma_vae_decoder', opset: 17 });
  const param = (name: string, t: Tensor32) => g.initializer(name, 'float32', t.dims, t.data);
  const shape = (name: string, dims: number[]) =>
    g.initializer(
      name,
      'int64',
      [dims.length],
      BigInt64Array.from(dims, (d) => BigInt(d)),
    );
  const conv = (x: string, name: string, layer: { weight: Tensor32; bias: Tensor32 }, pad: number) =>
    g.op('Conv', [x, param(`${name}.weight`, layer.weight), param(`${name}.bias`, layer.bias)], {
      kernel_shape: layer.weight.dims.slice(2),
      pads: [pad, pad, pad, pad],
      strides: [1, 1],
    });

  const dim = w.codebook.dims[1];
  const codes = g.input('codes', 'int64', ['batch', CODES_PER_MASK]);
  const codebook = param('codebook', w.codebook);
  const embedded = g.op('Gather', [codebook, codes], { axis: 0 }); // [B, 16, D]
  const grid = g.op('Reshape', [embedded, shape('grid_shape', [-1, 4, 4, dim])]); // row-major 4x4, as big_vision
  let x = g.op('Transpose', [grid], { perm: [0, 3, 1, 2] }); // NHWC -> NCHW
  x = g.op('Relu', [conv(x, 'decoder.0', w.conv0, 0)]);

  w.resBlocks.forEach((block, i) => {
    const name = `decoder.${2 + i}.net`;
    let y = g.op('Relu', [conv(x, `${name}.0`, block[0], 1)]);
    y = g.op('Relu', [conv(y, `${name}.2`, block[1], 1)]);
    y = conv(y, `${name}.4`, block[2], 0);
    x = g.op('Add', [y, x]);
  });

  w.upsample.forEach((layer, i) => {
    const name = `decoder.${4 + 2 * i}`;
    const y = g.op('ConvTranspose', [x, param(`${name}.weight`, layer.weight), param(`${name}.bias`, layer.bias)], {
      kernel_shape: [4, 4],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
    });
    x = g.op('Relu', [y]);
  });

  const out = conv(x, 'decoder.12', w.convOut, 0); // [B, 1, 64, 64]
  const masks = g.op('Reshape', [out, shape('mask_shape', [-1, 64, 64])]);
  g.output('masks', masks, 'float32', ['batch', 64, 64]);
  return g;
}

/** The serialised ONNX model. */
export function vaeDecoderOnnx(w: VaeWeights): Uint8Array {
  const model = buildVaeDecoder(w).toModel('paligemma-vscode convert-vae');
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
