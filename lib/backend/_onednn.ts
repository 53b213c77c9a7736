/**
 * oneDNN's primitives through `Deno.dlopen`, on float32 data that lives on
 * the wasm heap in the tfjs layouts (NHWC activations, HWIO filters): the
 * three convolution passes, training-mode batch norm and its gradient, max
 * pooling and its gradient, and the ReLU gradient.
 *
 * oneDNN (Debian: libdnnl2, the library PyTorch's CPU convolutions use)
 * picks its own kernel for each shape and runs it on its OpenMP threads.
 * Activations stay in the caller's NHWC layout. Filters are reordered to
 * the blocked layout that the chosen kernel reads, because the fast
 * kernels read no other. Primitives are built once per shape and thread
 * count, and kept.
 *
 * The C API is that of oneDNN 2.x (2.6 on Debian 12): operation
 * descriptors are plain structs filled by `*_desc_init` functions, so the
 * struct sizes below come from its headers.
 *
 * @module
 */

import type { ConvGeometry } from "./_blas_conv.ts";
import { ffiProblem, keepLoaded, openFirst } from "./_ffi.ts";

/** Library paths and names tried in order by {@linkcode loadOneDnn}. */
export const ONEDNN_LIBRARIES: readonly string[] = [
  `/usr/lib/${Deno.build.arch}-linux-gnu/libdnnl.so.2`,
  "libdnnl.so.2",
];

/** Geometry of one convolution, with the padding on all four sides. */
export interface DnnConvGeometry extends ConvGeometry {
  /** Rows of zero padding below the input. */
  padBottom: number;
  /** Columns of zero padding right of the input. */
  padRight: number;
}

// Struct sizes and enum values of oneDNN 2.6 (dnnl_types.h), checked with
// sizeof and printf against Debian's libdnnl-dev 2.6.3. The sizes are
// rounded up to whole kilobytes: the library writes at most sizeof bytes.
const SUPPORTED_VERSION = "2.6";
const MEMORY_DESC_BYTES = 1024; // sizeof(dnnl_memory_desc_t) = 696
const CONV_DESC_BYTES = 6144; // sizeof(dnnl_convolution_desc_t) = 5976
// sizeof(dnnl_batch_normalization_desc_t) = 3496
const BATCH_NORM_DESC_BYTES = 4096;
const POOLING_DESC_BYTES = 4096; // sizeof(dnnl_pooling_desc_t) = 3192
const ELTWISE_DESC_BYTES = 2048; // sizeof(dnnl_eltwise_desc_t) = 1416
const DNNL_SUCCESS = 0;
const DNNL_CPU = 1;
const DNNL_STREAM_DEFAULT_FLAGS = 1;
const DNNL_F32 = 3;
const TAG_ANY = 1;
const TAG_NHWC = 20;
const TAG_HWIO = 30;
const TAG_X = 2;
const TAG_AB = 3;
const FORWARD_TRAINING = 64;
const BACKWARD = 128;
const CONVOLUTION_DIRECT = 1;
const POOLING_MAX = 511;
const ELTWISE_RELU = 31;
const USE_SCALESHIFT = 2;
const USE_SCALE = 8;
const USE_SHIFT = 16;
const ARG_SRC = 1;
const ARG_DST = 17;
const ARG_WEIGHTS = 33;
const ARG_DIFF_SRC = 129;
const ARG_DIFF_DST = 145;
const ARG_DIFF_WEIGHTS = 161;
const ARG_WORKSPACE = 64;
const ARG_MEAN = 49;
const ARG_VARIANCE = 50;
const ARG_SCALE = 51;
const ARG_SHIFT = 52;
const ARG_SCALE_SHIFT = 33;
const ARG_DIFF_SCALE_SHIFT = 161;
const QUERY_IMPL_INFO_STR = 8;
const QUERY_WEIGHTS_MD = 131;
const QUERY_DIFF_WEIGHTS_MD = 132;
const QUERY_WORKSPACE_MD = 135;
/** DNNL_MEMORY_ALLOCATE: the library allocates the buffer. */
const MEMORY_ALLOCATE = 0xffff_ffff_ffff_ffffn;

const SYMBOLS = {
  dnnl_engine_create: {
    parameters: ["buffer", "i32", "usize"],
    result: "i32",
  },
  dnnl_stream_create: {
    parameters: ["buffer", "pointer", "u32"],
    result: "i32",
  },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_equal: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // prop_kind
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // weights_desc
      "pointer", // bias_desc
      "buffer", // dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // alg_kind
      "buffer", // diff_src_desc
      "buffer", // weights_desc
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // diff_weights_desc
      "pointer", // diff_bias_desc
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: {
    parameters: ["pointer", "i32", "i32"],
    result: "pointer",
  },
  dnnl_primitive_create: {
    parameters: ["buffer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: [
      "buffer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  dnnl_memory_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // The same function with the descriptor passed as a buffer, so that the
  // buffer stays alive for the call.
  dnnl_memory_create_from_buffer: {
    name: "dnnl_memory_create",
    parameters: ["buffer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_memory_get_memory_desc: {
    parameters: ["pointer", "buffer"],
    result: "i32",
  },
  dnnl_memory_set_data_handle: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_pooling_forward_desc_init: {
    parameters: [
      "buffer", // pool_desc
      "i32", // prop_kind
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // dst_desc
      "buffer", // strides
      "buffer", // kernel
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_pooling_backward_desc_init: {
    parameters: [
      "buffer", // pool_desc
      "i32", // alg_kind
      "buffer", // diff_src_desc
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // kernel
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_version: { parameters: [], result: "pointer" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** GNU OpenMP, the threading runtime of Debian's libdnnl2. */
const OPENMP_LIBRARY = "libgomp.so.1";
const OPENMP_SYMBOLS = {
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
  omp_get_max_threads: { parameters: [], result: "i32" },
} as const;
type OpenMp = Deno.DynamicLibrary<typeof OPENMP_SYMBOLS>["symbols"];

/** The oneDNN kernels of the toolkit, on pointers into one memory. */
export interface OneDnn {
  /** The name or path that `Deno.dlopen` opened. */
  library: string;
  /** oneDNN's version, e.g. "2.6.3". */
  version: string;
  /** y = conv(x, filter). */
  forward(
    g: DnnConvGeometry,
    x: Deno.PointerValue,
    filter: Deno.PointerValue,
    y: Deno.PointerValue,
  ): void;
  /** dx = the input gradient of conv(., filter) at dy. */
  backwardData(
    g: DnnConvGeometry,
    dy: Deno.PointerValue,
    filter: Deno.PointerValue,
    dx: Deno.PointerValue,
  ): void;
  /** dFilter = the filter gradient of conv(x, .) at dy. */
  backwardWeights(
    g: DnnConvGeometry,
    x: Deno.PointerValue,
    dy: Deno.PointerValue,
    dFilter: Deno.PointerValue,
  ): void;
  /**
   * Training-mode batch normalisation of x [N, H, W, C] (NHWC) with its
   * own statistics: y = gamma (x - mean) / sqrt(variance + epsilon) +
   * beta, where variance is the biased one.
   */
  batchNormForward(
    shape: BatchNormShape,
    epsilon: number,
    buffers: {
      x: Deno.PointerValue;
      gamma: Deno.PointerValue;
      beta: Deno.PointerValue;
      y: Deno.PointerValue;
      mean: Deno.PointerValue;
      variance: Deno.PointerValue;
    },
  ): void;
  /**
   * The gradient of {@linkcode OneDnn.batchNormForward}, with the batch
   * statistics as functions of x.
   */
  batchNormBackward(
    shape: BatchNormShape,
    epsilon: number,
    buffers: {
      dy: Deno.PointerValue;
      x: Deno.PointerValue;
      gamma: Deno.PointerValue;
      mean: Deno.PointerValue;
      variance: Deno.PointerValue;
      dx: Deno.PointerValue;
      dGamma: Deno.PointerValue;
      dBeta: Deno.PointerValue;
    },
  ): void;
  /**
   * Max pooling of x [N, H, W, C] (NHWC) into y, for training: returns
   * the workspace (where each window's maximum was) that
   * {@linkcode OneDnn.maxPoolBackward} needs. `g` describes the pool as a
   * convolution with C input and C output channels; padding is never a
   * maximum.
   */
  maxPoolForward(
    g: DnnConvGeometry,
    x: Deno.PointerValue,
    y: Deno.PointerValue,
  ): Uint8Array;
  /**
   * The max-pool gradient: dx gets each window's dy at the window's
   * maximum, as recorded in the forward pass's workspace.
   */
  maxPoolBackward(
    g: DnnConvGeometry,
    dy: Deno.PointerValue,
    workspace: Uint8Array,
    dx: Deno.PointerValue,
  ): void;
  /**
   * Whether oneDNN accepts a pass at geometry `g`: builds and caches its
   * primitive, and returns false when oneDNN rejects the shape, so that
   * the caller can run another kernel.
   */
  supports(
    kind: "forward" | "backwardData" | "backwardWeights" | "maxPool",
    g: DnnConvGeometry,
  ): boolean;
  /** dx = dy where x > 0, else 0, over `size` floats. */
  reluBackward(
    size: number,
    dy: Deno.PointerValue,
    x: Deno.PointerValue,
    dx: Deno.PointerValue,
  ): void;
  /**
   * Sets the OpenMP threads of the calling thread's later convolutions
   * (omp_set_num_threads, which is per calling thread: each Deno worker
   * has its own).
   */
  setThreads(threads: number): void;
  /**
   * The OpenMP threads when the library was opened: OMP_NUM_THREADS, else
   * every core.
   */
  defaultThreads: number;
  /** Returns the OpenMP threads the next convolution would use. */
  threads(): number;
  /** The implementation oneDNN chose for a pass, e.g. "brg:avx512_core". */
  implementation(
    pass: "forward" | "backwardData" | "backwardWeights",
    g: DnnConvGeometry,
  ): string;
}

/** The shape [N, H, W, C] of batch-normalised NHWC data. */
export type BatchNormShape = [number, number, number, number];

/** The outcome of {@linkcode loadOneDnn}: the library or why it failed. */
export type OneDnnLoad = { dnn: OneDnn } | { problem: string };

// Opened libraries by name, never closed: primitives built by a library
// stay in use for the life of the process.
const opened = new Map<string, OneDnn>();

/**
 * Opens the first library of `libraries` that loads, creates its CPU
 * engine and stream, or returns the one opened before.
 *
 * @param libraries Names or paths for `Deno.dlopen`, tried in order.
 * @returns The library, or a one-line reason when none could be opened.
 */
export function loadOneDnn(
  libraries: readonly string[] = ONEDNN_LIBRARIES,
): OneDnnLoad {
  const problem = ffiProblem();
  if (problem !== undefined) return { problem };
  const load = openFirst(
    libraries,
    SYMBOLS,
    opened,
    (library, handle) => {
      // libgomp's threads outlive every call, so neither library may be
      // unloaded while the process runs.
      if (!keepLoaded(library) || !keepLoaded(OPENMP_LIBRARY)) {
        handle.close();
        throw new Error(
          "could not be kept loaded (dlopen with RTLD_NODELETE failed)",
        );
      }
      // Already loaded by libdnnl.so.2 itself, so this finds that copy.
      const openMp = Deno.dlopen(OPENMP_LIBRARY, OPENMP_SYMBOLS).symbols;
      return wrap(library, handle.symbols, openMp);
    },
  );
  if ("value" in load) return { dnn: load.value };
  return {
    problem: `oneDNN could not be loaded (${load.failures.join("; ")}). ` +
      "Install it (Debian: apt-get install libdnnl2)",
  };
}

/** Throws when a oneDNN call did not return dnnl_success. */
function check(status: number, call: string): void {
  if (status !== DNNL_SUCCESS) {
    throw new Error(`oneDNN: ${call} failed with status ${status}`);
  }
}

/** Reads the pointer that a call wrote into a one-element out parameter. */
function pointerOut(cell: BigUint64Array): Deno.PointerObject {
  const pointer = Deno.UnsafePointer.create(cell[0]);
  if (pointer === null) throw new Error("oneDNN: a call returned null");
  return pointer;
}

/**
 * Allocates bytes whose address native code may keep. V8 stores a small
 * typed array made with a length (64 bytes or less) inside its own heap,
 * where a garbage collection may move it between the JavaScript lines that
 * take its address and the call that writes to it. An ArrayBuffer's
 * storage is outside that heap and never moves.
 */
function offHeapBytes(length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new ArrayBuffer(length));
}

function dims(values: number[]): BigInt64Array {
  const out = new BigInt64Array(offHeapBytes(8 * values.length).buffer);
  values.forEach((value, index) => out[index] = BigInt(value));
  return out;
}

/** A filter reorder between the caller's HWIO layout and the kernel's. */
interface Reorder {
  primitive: Deno.PointerObject;
  args: Uint8Array;
}

/** One primitive for one shape, with its memory objects, ready to run. */
interface Plan {
  primitive: Deno.PointerObject;
  /** Argument buffer of `primitive`. */
  args: Uint8Array;
  /** Memory objects that wrap the caller's buffers, by argument. */
  user: Map<number, Deno.PointerObject>;
  /** Runs before the convolution: HWIO filter to the kernel's layout. */
  before?: Reorder;
  /** Runs after it: the kernel's filter gradient to HWIO. */
  after?: Reorder;
  implementation: string;
}

type Pass = "forward" | "backwardData" | "backwardWeights";

/**
 * Arguments of each pass: its input (x or dy), its output or second input
 * (y, dx or dy) and the filter or its gradient.
 */
const PASS_ARGS: Record<Pass, [number, number, number]> = {
  forward: [ARG_SRC, ARG_DST, ARG_WEIGHTS],
  backwardData: [ARG_DIFF_DST, ARG_DIFF_SRC, ARG_WEIGHTS],
  backwardWeights: [ARG_SRC, ARG_DIFF_DST, ARG_DIFF_WEIGHTS],
};

function argsBuffer(entries: [number, Deno.PointerObject][]): Uint8Array {
  // dnnl_exec_arg_t: int arg, 4 bytes of padding, dnnl_memory_t memory.
  const bytes = offHeapBytes(16 * entries.length);
  const view = new DataView(bytes.buffer);
  entries.forEach(([arg, memory], index) => {
    view.setInt32(16 * index, arg, true);
    view.setBigUint64(
      16 * index + 8,
      BigInt(Deno.UnsafePointer.value(memory)),
      true,
    );
  });
  return bytes;
}

function keyOf(g: DnnConvGeometry): string {
  return [
    g.batchSize,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padBottom,
    g.padLeft,
    g.padRight,
  ].join(",");
}

function wrap(library: string, s: Symbols, openMp: OpenMp): OneDnn {
  const cell = new BigUint64Array(offHeapBytes(8).buffer);
  check(s.dnnl_engine_create(cell, DNNL_CPU, 0n), "dnnl_engine_create");
  const engine = pointerOut(cell);
  check(
    s.dnnl_stream_create(cell, engine, DNNL_STREAM_DEFAULT_FLAGS),
    "dnnl_stream_create",
  );
  const stream = pointerOut(cell);
  const versionPointer = s.dnnl_version();
  let version = "unknown";
  let majorMinor = "";
  if (versionPointer !== null) {
    // dnnl_version_t starts with three ints: major, minor, patch.
    const view = new Deno.UnsafePointerView(versionPointer);
    majorMinor = `${view.getInt32(0)}.${view.getInt32(4)}`;
    version = `${majorMinor}.${view.getInt32(8)}`;
  }
  // The struct sizes and enum values above come from 2.6's headers, and
  // other releases may number them differently.
  if (majorMinor !== SUPPORTED_VERSION) {
    throw new Error(
      `oneDNN ${version} is not supported: this toolkit calls the C API ` +
        `of oneDNN ${SUPPORTED_VERSION} (Debian 12's libdnnl2)`,
    );
  }
  const allocate = Deno.UnsafePointer.create(MEMORY_ALLOCATE);

  const memoryDesc = (shape: number[], tag: number): Uint8Array => {
    const desc = new Uint8Array(MEMORY_DESC_BYTES);
    check(
      s.dnnl_memory_desc_init_by_tag(
        desc,
        shape.length,
        dims(shape),
        DNNL_F32,
        tag,
      ),
      "dnnl_memory_desc_init_by_tag",
    );
    return desc;
  };
  /**
   * Creates a memory object for a descriptor given as a buffer or as a
   * pointer that the library owns, with the data at `handle`.
   */
  const memory = (
    desc: Uint8Array | Deno.PointerValue,
    handle: Deno.PointerValue,
  ): Deno.PointerObject => {
    const status = desc instanceof Uint8Array
      ? s.dnnl_memory_create_from_buffer(cell, desc, engine, handle)
      : s.dnnl_memory_create(cell, desc, engine, handle);
    check(status, "dnnl_memory_create");
    return pointerOut(cell);
  };
  /** Returns the library's copy of a memory object's descriptor. */
  const descOf = (memory: Deno.PointerObject): Deno.PointerObject => {
    check(
      s.dnnl_memory_get_memory_desc(memory, cell),
      "dnnl_memory_get_memory_desc",
    );
    return pointerOut(cell);
  };
  const primitive = (pd: Deno.PointerObject): Deno.PointerObject => {
    check(s.dnnl_primitive_create(cell, pd), "dnnl_primitive_create");
    return pointerOut(cell);
  };
  const implementationOf = (pd: Deno.PointerObject): string => {
    check(
      s.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO_STR, 0, cell),
      "dnnl_primitive_desc_query",
    );
    const text = Deno.UnsafePointer.create(cell[0]);
    return text === null ? "unknown" : Deno.UnsafePointerView.getCString(text);
  };
  /** A reorder from one memory to another, or none when layouts match. */
  const reorder = (
    from: Deno.PointerObject,
    fromDesc: Deno.PointerValue,
    to: Deno.PointerObject,
    toDesc: Deno.PointerValue,
  ): Reorder | undefined => {
    if (s.dnnl_memory_desc_equal(fromDesc, toDesc) !== 0) return undefined;
    check(
      s.dnnl_reorder_primitive_desc_create(
        cell,
        fromDesc,
        engine,
        toDesc,
        engine,
        null,
      ),
      "dnnl_reorder_primitive_desc_create",
    );
    return {
      primitive: primitive(pointerOut(cell)),
      args: argsBuffer([[ARG_SRC, from], [ARG_DST, to]]),
    };
  };
  /** Builds a primitive descriptor from an operation descriptor. */
  const primitiveDescOf = (
    op: Uint8Array,
    hint: Deno.PointerValue,
    label: string,
  ): Deno.PointerObject => {
    check(
      s.dnnl_primitive_desc_create(cell, op, null, engine, hint),
      `dnnl_primitive_desc_create (${label})`,
    );
    return pointerOut(cell);
  };

  /**
   * Builds a plan whose every argument wraps a caller's buffer, given the
   * memory descriptor of each argument.
   */
  const userPlan = (
    pd: Deno.PointerObject,
    args: [number, Uint8Array | Deno.PointerValue][],
  ): Plan => {
    const user = new Map<number, Deno.PointerObject>();
    for (const [arg, desc] of args) user.set(arg, memory(desc, null));
    return {
      primitive: primitive(pd),
      args: argsBuffer([...user]),
      user,
      implementation: implementationOf(pd),
    };
  };

  /** Returns the plan cached under `key`, building it on a miss. */
  const cachedPlan = <T extends Plan>(
    cache: Map<string, T>,
    key: string,
    build: () => T,
  ): T => {
    // oneDNN may divide a primitive's work for the thread count at the
    // time it is built, so the thread count is part of every key.
    const fullKey = `${openMp.omp_get_max_threads()}:${key}`;
    let plan = cache.get(fullKey);
    if (plan === undefined) {
      plan = build();
      cache.set(fullKey, plan);
    }
    return plan;
  };

  const execute = (
    primitive: Deno.PointerObject,
    args: Uint8Array,
    call: string,
  ) => {
    check(
      s.dnnl_primitive_execute(primitive, stream, args.length / 16, args),
      call,
    );
  };

  /** Forward primitive descriptors, also the hints of both gradients. */
  const forwardDescs = new Map<string, Deno.PointerObject>();
  const plans = new Map<string, Plan>();

  /**
   * Memory descriptors of one shape. The user filter is HWIO; the
   * kernel's filter layout is left to the library ("any").
   */
  const descriptors = (g: DnnConvGeometry) => {
    const weights = [
      g.outChannels,
      g.inChannels,
      g.filterHeight,
      g.filterWidth,
    ];
    return {
      src: memoryDesc(
        [g.batchSize, g.inChannels, g.inHeight, g.inWidth],
        TAG_NHWC,
      ),
      dst: memoryDesc(
        [g.batchSize, g.outChannels, g.outHeight, g.outWidth],
        TAG_NHWC,
      ),
      weightsAny: memoryDesc(weights, TAG_ANY),
      weightsUser: memoryDesc(weights, TAG_HWIO),
      strides: dims([g.strideHeight, g.strideWidth]),
      padLeft: dims([g.padTop, g.padLeft]),
      padRight: dims([g.padBottom, g.padRight]),
    };
  };

  const operationDesc = (
    pass: Pass,
    d: ReturnType<typeof descriptors>,
  ): Uint8Array => {
    const op = new Uint8Array(CONV_DESC_BYTES);
    const geometry = [d.strides, d.padLeft, d.padRight] as const;
    const status = pass === "forward"
      ? s.dnnl_convolution_forward_desc_init(
        op,
        FORWARD_TRAINING,
        CONVOLUTION_DIRECT,
        d.src,
        d.weightsAny,
        null,
        d.dst,
        ...geometry,
      )
      : pass === "backwardData"
      ? s.dnnl_convolution_backward_data_desc_init(
        op,
        CONVOLUTION_DIRECT,
        d.src,
        d.weightsAny,
        d.dst,
        ...geometry,
      )
      : s.dnnl_convolution_backward_weights_desc_init(
        op,
        CONVOLUTION_DIRECT,
        d.src,
        d.weightsAny,
        null,
        d.dst,
        ...geometry,
      );
    check(status, `dnnl_convolution_${pass}_desc_init`);
    return op;
  };

  const primitiveDesc = (
    pass: Pass,
    g: DnnConvGeometry,
  ): Deno.PointerObject => {
    const key = `${openMp.omp_get_max_threads()}:${keyOf(g)}`;
    const forward = forwardDescs.get(key);
    if (pass === "forward" && forward !== undefined) return forward;
    const hint = pass === "forward" ? null : primitiveDesc("forward", g);
    const op = operationDesc(pass, descriptors(g));
    const pd = primitiveDescOf(op, hint, `convolution ${pass} ${describe(g)}`);
    if (pass === "forward") forwardDescs.set(key, pd);
    return pd;
  };

  const buildPlan = (pass: Pass, g: DnnConvGeometry): Plan => {
    const pd = primitiveDesc(pass, g);
    const d = descriptors(g);
    const [inArg, outArg, filterArg] = PASS_ARGS[pass];
    // x and dx have the source layout, y and dy the destination's. The
    // library copies descriptors into memory objects, so the buffers need
    // not outlive these calls.
    const [inDesc, outDesc] = pass === "forward"
      ? [d.src, d.dst]
      : pass === "backwardData"
      ? [d.dst, d.src]
      : [d.src, d.dst];
    const inMemory = memory(inDesc, null);
    const outMemory = memory(outDesc, null);

    // The caller's HWIO filter, and the kernel's layout when it differs.
    const userFilter = memory(d.weightsUser, null);
    const userDesc = descOf(userFilter);
    const chosenDesc = s.dnnl_primitive_desc_query_md(
      pd,
      pass === "backwardWeights" ? QUERY_DIFF_WEIGHTS_MD : QUERY_WEIGHTS_MD,
      0,
    );
    let kernelFilter = userFilter;
    let before: Reorder | undefined;
    let after: Reorder | undefined;
    if (s.dnnl_memory_desc_equal(userDesc, chosenDesc) === 0) {
      kernelFilter = memory(chosenDesc, allocate);
      if (pass === "backwardWeights") {
        after = reorder(kernelFilter, chosenDesc, userFilter, userDesc);
      } else {
        before = reorder(userFilter, userDesc, kernelFilter, chosenDesc);
      }
    }

    return {
      primitive: primitive(pd),
      args: argsBuffer([
        [inArg, inMemory],
        [outArg, outMemory],
        [filterArg, kernelFilter],
      ]),
      user: new Map([
        [inArg, inMemory],
        [outArg, outMemory],
        [filterArg, userFilter],
      ]),
      before,
      after,
      implementation: implementationOf(pd),
    };
  };

  const planFor = (pass: Pass, g: DnnConvGeometry): Plan =>
    cachedPlan(plans, `${pass}:${keyOf(g)}`, () => buildPlan(pass, g));

  /** Points the plan's memory objects at the caller's buffers and runs. */
  const runPlan = (
    plan: Plan,
    buffers: [number, Deno.PointerValue][],
    name: string,
  ) => {
    for (const [arg, handle] of buffers) {
      check(
        s.dnnl_memory_set_data_handle(plan.user.get(arg)!, handle),
        "dnnl_memory_set_data_handle",
      );
    }
    if (plan.before !== undefined) {
      execute(plan.before.primitive, plan.before.args, "filter reorder");
    }
    execute(plan.primitive, plan.args, name);
    if (plan.after !== undefined) {
      execute(plan.after.primitive, plan.after.args, "filter reorder");
    }
    check(s.dnnl_stream_wait(stream), "dnnl_stream_wait");
  };

  /** Runs one pass on the caller's buffers: input, output, filter. */
  const run = (
    pass: Pass,
    g: DnnConvGeometry,
    buffers: [Deno.PointerValue, Deno.PointerValue, Deno.PointerValue],
  ) => {
    const args = PASS_ARGS[pass];
    runPlan(
      planFor(pass, g),
      args.map((arg, index) => [arg, buffers[index]]),
      `convolution ${pass}`,
    );
  };

  /** Batch-norm plans; the backward ones carry their [2, C] arrays. */
  type BatchNormPlan = Plan & { scaleShift?: Float32Array };
  const batchNormPlans = new Map<string, BatchNormPlan>();

  /**
   * Builds a batch-norm primitive. The data arguments [N, H, W, C] and the
   * forward pass's [C] arguments wrap the caller's buffers. The backward
   * pass takes gamma and returns both gradients as one [2, C] array
   * (scale, then shift) in `scaleShift`. It cannot use separate scale and
   * shift gradients: oneDNN 2.6.3 builds that primitive but rejects its
   * execution with status 2 (invalid arguments), checked with a C program.
   */
  const batchNormPlan = (
    backward: boolean,
    shape: BatchNormShape,
    epsilon: number,
  ): BatchNormPlan => {
    const [n, h, w, c] = shape;
    const data = memoryDesc([n, c, h, w], TAG_NHWC);
    const channels = memoryDesc([c], TAG_X);
    const flags = backward ? USE_SCALESHIFT : USE_SCALE | USE_SHIFT;
    const forwardOp = new Uint8Array(BATCH_NORM_DESC_BYTES);
    check(
      s.dnnl_batch_normalization_forward_desc_init(
        forwardOp,
        FORWARD_TRAINING,
        data,
        epsilon,
        flags,
      ),
      "dnnl_batch_normalization_forward_desc_init",
    );
    const forward = primitiveDescOf(forwardOp, null, `batch norm [${shape}]`);
    if (!backward) {
      return userPlan(forward, [
        [ARG_SRC, data],
        [ARG_DST, data],
        [ARG_SCALE, channels],
        [ARG_SHIFT, channels],
        [ARG_MEAN, channels],
        [ARG_VARIANCE, channels],
      ]);
    }

    const backwardOp = new Uint8Array(BATCH_NORM_DESC_BYTES);
    check(
      s.dnnl_batch_normalization_backward_desc_init(
        backwardOp,
        BACKWARD,
        data,
        data,
        epsilon,
        flags,
      ),
      "dnnl_batch_normalization_backward_desc_init",
    );
    const pd = primitiveDescOf(
      backwardOp,
      forward,
      `batch norm backward [${shape}]`,
    );
    // Two [2, C] arrays in one: gamma and an unread shift row, then the
    // gradients. Their memory objects get the array's address at each call.
    const pairs = memoryDesc([2, c], TAG_AB);
    return {
      ...userPlan(pd, [
        [ARG_SRC, data],
        [ARG_DIFF_DST, data],
        [ARG_DIFF_SRC, data],
        [ARG_MEAN, channels],
        [ARG_VARIANCE, channels],
        [ARG_SCALE_SHIFT, pairs],
        [ARG_DIFF_SCALE_SHIFT, pairs],
      ]),
      scaleShift: new Float32Array(offHeapBytes(16 * c).buffer),
    };
  };

  /** Max-pool plans, with the size of the forward pass's workspace. */
  type PoolPlan = Plan & { workspaceBytes: number };
  const poolPlans = new Map<string, PoolPlan>();

  /** Builds the max pool of `g`, forward or backward. */
  const poolPlan = (backward: boolean, g: DnnConvGeometry): PoolPlan => {
    const d = descriptors(g);
    const kernel = dims([g.filterHeight, g.filterWidth]);
    const forwardOp = new Uint8Array(POOLING_DESC_BYTES);
    check(
      s.dnnl_pooling_forward_desc_init(
        forwardOp,
        FORWARD_TRAINING,
        POOLING_MAX,
        d.src,
        d.dst,
        d.strides,
        kernel,
        d.padLeft,
        d.padRight,
      ),
      "dnnl_pooling_forward_desc_init",
    );
    const forward = primitiveDescOf(forwardOp, null, `max pool ${describe(g)}`);
    // The backward pass reads the workspace that the forward pass wrote,
    // so both take its layout from the forward descriptor.
    const workspace = s.dnnl_primitive_desc_query_md(
      forward,
      QUERY_WORKSPACE_MD,
      0,
    );
    const workspaceBytes = Number(s.dnnl_memory_desc_get_size(workspace));
    if (!backward) {
      return {
        ...userPlan(forward, [
          [ARG_SRC, d.src],
          [ARG_DST, d.dst],
          [ARG_WORKSPACE, workspace],
        ]),
        workspaceBytes,
      };
    }

    const backwardOp = new Uint8Array(POOLING_DESC_BYTES);
    check(
      s.dnnl_pooling_backward_desc_init(
        backwardOp,
        POOLING_MAX,
        d.src,
        d.dst,
        d.strides,
        kernel,
        d.padLeft,
        d.padRight,
      ),
      "dnnl_pooling_backward_desc_init",
    );
    const pd = primitiveDescOf(
      backwardOp,
      forward,
      `max pool backward ${describe(g)}`,
    );
    return {
      ...userPlan(pd, [
        [ARG_DIFF_SRC, d.src],
        [ARG_DIFF_DST, d.dst],
        [ARG_WORKSPACE, workspace],
      ]),
      workspaceBytes,
    };
  };

  const reluPlans = new Map<
    string,
    Plan
  >(); /** Results of `supports` by pass, thread count and geometry. */
  const support = new Map<string, boolean>();

  /** Builds the ReLU gradient over `size` floats, seen as one array. */
  const reluPlan = (size: number): Plan => {
    const data = memoryDesc([size], TAG_X);
    const forwardOp = new Uint8Array(ELTWISE_DESC_BYTES);
    check(
      s.dnnl_eltwise_forward_desc_init(
        forwardOp,
        FORWARD_TRAINING,
        ELTWISE_RELU,
        data,
        0,
        0,
      ),
      "dnnl_eltwise_forward_desc_init",
    );
    const hint = primitiveDescOf(forwardOp, null, `relu, ${size} floats`);

    const backwardOp = new Uint8Array(ELTWISE_DESC_BYTES);
    check(
      s.dnnl_eltwise_backward_desc_init(
        backwardOp,
        ELTWISE_RELU,
        data,
        data,
        0,
        0,
      ),
      "dnnl_eltwise_backward_desc_init",
    );
    const pd = primitiveDescOf(
      backwardOp,
      hint,
      `relu backward, ${size} floats`,
    );
    return userPlan(pd, [
      [ARG_SRC, data],
      [ARG_DIFF_DST, data],
      [ARG_DIFF_SRC, data],
    ]);
  };

  return {
    library,
    version,
    defaultThreads: openMp.omp_get_max_threads(),
    forward(g, x, filter, y) {
      run("forward", g, [x, y, filter]);
    },
    backwardData(g, dy, filter, dx) {
      run("backwardData", g, [dy, dx, filter]);
    },
    backwardWeights(g, x, dy, dFilter) {
      run("backwardWeights", g, [x, dy, dFilter]);
    },
    batchNormForward(shape, epsilon, b) {
      const plan = cachedPlan(
        batchNormPlans,
        `forward:${shape}:${epsilon}`,
        () => batchNormPlan(false, shape, epsilon),
      );
      runPlan(plan, [
        [ARG_SRC, b.x],
        [ARG_SCALE, b.gamma],
        [ARG_SHIFT, b.beta],
        [ARG_DST, b.y],
        [ARG_MEAN, b.mean],
        [ARG_VARIANCE, b.variance],
      ], "batch norm forward");
    },
    batchNormBackward(shape, epsilon, b) {
      const plan = cachedPlan(
        batchNormPlans,
        `backward:${shape}:${epsilon}`,
        () => batchNormPlan(true, shape, epsilon),
      );
      const pairs = plan.scaleShift!;
      const c = shape[3];
      new Deno.UnsafePointerView(b.gamma!).copyInto(pairs.subarray(0, c));
      const pairsAt = Deno.UnsafePointer.of(pairs);
      runPlan(plan, [
        [ARG_DIFF_DST, b.dy],
        [ARG_SRC, b.x],
        [ARG_MEAN, b.mean],
        [ARG_VARIANCE, b.variance],
        [ARG_DIFF_SRC, b.dx],
        [ARG_SCALE_SHIFT, pairsAt],
        [ARG_DIFF_SCALE_SHIFT, Deno.UnsafePointer.offset(pairsAt!, 8 * c)],
      ], "batch norm backward");
      const floatsAt = (pointer: Deno.PointerValue) =>
        new Float32Array(
          Deno.UnsafePointerView.getArrayBuffer(pointer!, 4 * c),
        );
      floatsAt(b.dGamma).set(pairs.subarray(2 * c, 3 * c));
      floatsAt(b.dBeta).set(pairs.subarray(3 * c, 4 * c));
    },
    supports(kind, g) {
      const key = `${kind}:${openMp.omp_get_max_threads()}:${keyOf(g)}`;
      const known = support.get(key);
      if (known !== undefined) return known;
      let ok = true;
      try {
        if (kind === "maxPool") {
          cachedPlan(
            poolPlans,
            `forward:${keyOf(g)}`,
            () => poolPlan(false, g),
          );
          cachedPlan(
            poolPlans,
            `backward:${keyOf(g)}`,
            () => poolPlan(true, g),
          );
        } else {
          planFor(kind, g);
        }
      } catch {
        ok = false;
      }
      support.set(key, ok);
      return ok;
    },
    maxPoolForward(g, x, y) {
      const plan = cachedPlan(
        poolPlans,
        `forward:${keyOf(g)}`,
        () => poolPlan(false, g),
      );
      const workspace = offHeapBytes(plan.workspaceBytes);
      runPlan(plan, [
        [ARG_SRC, x],
        [ARG_DST, y],
        [ARG_WORKSPACE, Deno.UnsafePointer.of(workspace)],
      ], "max pool forward");
      return workspace;
    },
    maxPoolBackward(g, dy, workspace, dx) {
      const plan = cachedPlan(
        poolPlans,
        `backward:${keyOf(g)}`,
        () => poolPlan(true, g),
      );
      if (workspace.byteLength !== plan.workspaceBytes) {
        throw new Error(
          `oneDNN max pool backward: the workspace has ` +
            `${workspace.byteLength} bytes, expected ${plan.workspaceBytes}`,
        );
      }
      runPlan(plan, [
        [ARG_DIFF_DST, dy],
        [ARG_DIFF_SRC, dx],
        [ARG_WORKSPACE, Deno.UnsafePointer.of(workspace)],
      ], "max pool backward");
    },
    reluBackward(size, dy, x, dx) {
      const plan = cachedPlan(reluPlans, `${size}`, () => reluPlan(size));
      runPlan(plan, [
        [ARG_DIFF_DST, dy],
        [ARG_SRC, x],
        [ARG_DIFF_SRC, dx],
      ], "relu backward");
    },
    setThreads(threads) {
      openMp.omp_set_num_threads(threads);
    },
    threads() {
      return openMp.omp_get_max_threads();
    },
    implementation(pass, g) {
      return planFor(pass, g).implementation;
    },
  };
}

function describe(g: DnnConvGeometry): string {
  return `x [${g.batchSize}, ${g.inHeight}, ${g.inWidth}, ${g.inChannels}], ` +
    `filter ${g.filterHeight}x${g.filterWidth}x${g.inChannels}x` +
    `${g.outChannels}, stride ${g.strideHeight}x${g.strideWidth}`;
}
