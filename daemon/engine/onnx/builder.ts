// A small ONNX graph builder over `onnx-proto`: nodes, initializers (inline or streamed into an
// external data file), opset imports and value infos with symbolic dims.
import { writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { ExternalDataWriter, type ExternalLocation } from './external-data.js';

export const onnx = onnxProto.onnx;

export const DType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  bfloat16: 16,
} as const;
export type DTypeName = keyof typeof DType;

export const bytesPerElement: Record<DTypeName, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  bfloat16: 2,
};

export type Dim = number | string;

/** A float attribute (plain numbers are integer attributes). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const f = (value: number): FloatAttr => new FloatAttr(value);
/** A graph attribute (the body of a Loop or If). */
export class GraphAttr {
  constructor(readonly graph: onnxProto.onnx.IGraphProto) {}
}
export type AttrValue = number | number[] | string | FloatAttr | FloatAttr[] | GraphAttr;

export const MS_DOMAIN = 'com.microsoft';

export interface GraphOptions {
  name: string;
  /** Where initializers of at least `externalThreshold` bytes go; inline when absent. */
  externalData?: ExternalDataWriter;
  externalThreshold?: number;
  opset?: number;
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (v instanceof FloatAttr) return { name, type: T.FLOAT, f: v.value };
  if (v instanceof GraphAttr) return { name, type: T.GRAPH, g: v.graph };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use f())`);
    return { name, type: T.INT, i: v };
  }
  if (v.length > 0 && v[0] instanceof FloatAttr) {
    return { name, type: T.FLOATS, floats: (v as FloatAttr[]).map((x) => x.value) };
  }
  return { name, type: T.INTS, ints: v as number[] };
}

function valueInfo(name: string, dtype: DTypeName, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DType[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly initializerNames = new Set<string>();
  private readonly names: Set<string>;
  private readonly domains: Set<string>;
  private counter = 0;
  private readonly consts = new Map<string, string>();

  /**
   * `outer`: this builds a control-flow body inside that graph. Names are unique across both (so a
   * body never shadows the outer graph), and initializers and constants live in the outer graph,
   * whose values a body may read by name.
   */
  constructor(
    readonly options: GraphOptions,
    private readonly outer?: GraphBuilder,
  ) {
    this.names = outer ? outer.names : new Set();
    this.domains = outer ? outer.domains : new Set();
  }

  /** A builder for the body of a Loop or If node in this graph (see the constructor). */
  body(name: string): GraphBuilder {
    return new GraphBuilder({ name }, this);
  }

  /** An unused tensor name with a readable prefix (claimed when a node or initializer uses it). */
  fresh(prefix: string): string {
    if (this.outer) return this.outer.fresh(prefix);
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`duplicate tensor name ${name}`);
    this.names.add(name);
    return name;
  }

  private readonly sharedValues = new Map<string, string>();

  /** A value computed once in the outermost graph (bodies read it from there), made on first use. */
  shared(key: string, make: (root: GraphBuilder) => string): string {
    if (this.outer) return this.outer.shared(key, make);
    let name = this.sharedValues.get(key);
    if (name === undefined) {
      name = make(this);
      this.sharedValues.set(key, name);
    }
    return name;
  }

  /** Whether an initializer of that name exists (in the outermost graph). */
  hasInitializer(name: string): boolean {
    return this.outer ? this.outer.hasInitializer(name) : this.initializerNames.has(name);
  }

  /**
   * Takes over another graph's initializers as they are (external ones keep pointing at its data
   * file): a second graph over the same weights, with no weight written twice.
   */
  adoptInitializers(from: GraphBuilder): void {
    if (this.outer || from.outer) throw new Error('only top-level graphs hold initializers');
    for (const init of from.initializers) {
      this.initializers.push(init);
      this.initializerNames.add(this.claim(init.name!));
    }
  }

  input(name: string, dtype: DTypeName, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), dtype, dims));
    return name;
  }

  /** Declares `tensor` a graph output, renaming it through Identity when the name differs. */
  output(name: string, tensor: string, dtype: DTypeName, dims: Dim[]): void {
    if (tensor !== name) this.op('Identity', [tensor], {}, { outputs: [name] });
    this.outputs.push(valueInfo(name, dtype, dims));
  }

  /** Adds a node with one output and returns that output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: string[]; domain?: string; name?: string } = {}): string {
    return this.opN(opType, inputs, 1, attrs, opts)[0];
  }

  /** Adds a node with `count` outputs. Empty-string inputs stand for omitted optional inputs. */
  opN(opType: string, inputs: string[], count: number, attrs: Record<string, AttrValue> = {}, opts: { outputs?: string[]; domain?: string; name?: string } = {}): string[] {
    const outputs = (opts.outputs ?? Array.from({ length: count }, () => this.fresh(opType.toLowerCase()))).map((o) => this.claim(o));
    if (opts.domain) this.domains.add(opts.domain);
    this.nodes.push({
      opType,
      domain: opts.domain ?? '',
      name: opts.name ?? this.fresh(`n_${opType}`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** An initializer from bytes already in memory (little-endian). */
  initializer(name: string, dtype: DTypeName, dims: number[], data: ArrayBufferView): string {
    if (this.outer) return this.outer.initializer(name, dtype, dims, data);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const expected = dims.reduce((a, b) => a * b, 1) * bytesPerElement[dtype];
    if (bytes.byteLength !== expected) {
      throw new Error(`initializer ${name}: ${bytes.byteLength} bytes for dims [${dims}] ${dtype}`);
    }
    const ext = this.options.externalData;
    if (ext && bytes.byteLength >= (this.options.externalThreshold ?? 1024)) {
      this.pushExternal(name, dtype, dims, ext.write(bytes));
    } else {
      this.initializers.push({ name: this.claim(name), dataType: DType[dtype], dims, rawData: bytes.slice() });
      this.initializerNames.add(name);
    }
    return name;
  }

  /** An initializer written in chunks (row blocks of a big matrix): never whole in memory. */
  streamedInitializer(name: string, dtype: DTypeName, dims: number[], produce: (write: (chunk: ArrayBufferView) => void) => void): string {
    if (this.outer) return this.outer.streamedInitializer(name, dtype, dims, produce);
    const length = dims.reduce((a, b) => a * b, 1) * bytesPerElement[dtype];
    const ext = this.options.externalData;
    if (!ext) {
      const parts: Uint8Array[] = [];
      produce((c) => parts.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength).slice()));
      return this.initializer(name, dtype, dims, Buffer.concat(parts));
    }
    const sink = ext.begin(length);
    produce((c) => sink.write(c));
    this.pushExternal(name, dtype, dims, sink.end());
    return name;
  }

  private pushExternal(name: string, dtype: DTypeName, dims: number[], loc: ExternalLocation): void {
    this.initializerNames.add(name);
    this.initializers.push({
      name: this.claim(name),
      dataType: DType[dtype],
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: loc.location },
        { key: 'offset', value: String(loc.offset) },
        { key: 'length', value: String(loc.length) },
      ],
    });
  }

  /** A small constant, shared between uses (a body's constants live in the outer graph). */
  constant(dtype: 'float32' | 'int64' | 'float16', values: number[], dims: number[] = [values.length]): string {
    if (this.outer) return this.outer.constant(dtype, values, dims);
    const key = `${dtype}:${dims}:${values}`;
    const known = this.consts.get(key);
    if (known) return known;
    let data: ArrayBufferView;
    if (dtype === 'float32') data = new Float32Array(values);
    else if (dtype === 'int64') data = new BigInt64Array(values.map((v) => BigInt(v)));
    else data = float32ToFloat16(new Float32Array(values));
    const name = this.initializer(this.fresh(`c_${dtype}`), dtype, dims, data);
    this.consts.set(key, name);
    return name;
  }

  /** A float scalar constant in the given compute dtype (rounded to it). */
  scalar(dtype: 'float32' | 'float16', value: number): string {
    return this.constant(dtype, [value], []);
  }

  int64s(values: number[]): string {
    return this.constant('int64', values);
  }

  /** This graph as a GraphProto (a control-flow body: no initializers of its own). */
  toGraph(): onnxProto.onnx.IGraphProto {
    return { name: this.options.name, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers };
  }

  toModel(producer = 'paligemma-vscode'): onnxProto.onnx.IModelProto {
    const opsetImport: onnxProto.onnx.IOperatorSetIdProto[] = [{ domain: '', version: this.options.opset ?? 17 }];
    for (const d of this.domains) opsetImport.push({ domain: d, version: 1 });
    return {
      irVersion: 8,
      producerName: producer,
      opsetImport,
      graph: {
        name: this.options.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    };
  }

  /** Serialises the graph (external data must already be written; the caller closes it). */
  save(path: string): void {
    const bytes = onnx.ModelProto.encode(onnx.ModelProto.create(this.toModel())).finish();
    writeFileSync(path, bytes);
  }

  get nodeCount(): number {
    return this.nodes.length;
  }
}

// IEEE half conversion with round-to-nearest-even (what numpy/torch `.half()` do).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function toHalfBits(value: number): number {
  f32[0] = value;
  return halfFromBits(u32[0]);
}

function halfFromBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = halfFromBits(bits[i]);
  return out;
}

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
