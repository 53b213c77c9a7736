/**
 * OpenBLAS's `cblas_sgemm` through `Deno.dlopen`, for the BLAS convolution
 * kernels. Loading catches its errors: a missing library or a missing FFI
 * permission is returned as a reason, so that callers can fall back.
 *
 * @module
 */

/** Debian's multiarch folder for this CPU, e.g. "x86_64-linux-gnu". */
function multiarch(): string {
  return `${Deno.build.arch}-linux-gnu`;
}

/** Library paths and names tried in order by {@linkcode loadOpenBlas}. */
export const OPENBLAS_LIBRARIES: readonly string[] = [
  // Debian's libopenblas0-pthread (or -openmp, -serial) through alternatives.
  `/usr/lib/${multiarch()}/libopenblas.so.0`,
  "libopenblas.so.0",
  "libopenblas.so",
];

import { ffiProblem, keepLoaded, openFirst } from "./_ffi.ts";

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "pointer", // A
      "i32", // lda
      "pointer", // B
      "i32", // ldb
      "f32", // beta
      "pointer", // C
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_get_config: { parameters: [], result: "pointer" },
} as const;

// CBLAS enum values (cblas.h).
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** An opened OpenBLAS library. */
export interface OpenBlas {
  /** The name or path that `Deno.dlopen` opened. */
  library: string;
  /** OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH Zen". */
  config: string;
  /**
   * Computes C = alpha * op(A) op(B) + beta * C on row-major float32
   * matrices, where op(A) is M x K and op(B) is K x N.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Deno.PointerValue,
    lda: number,
    b: Deno.PointerValue,
    ldb: number,
    beta: number,
    c: Deno.PointerValue,
    ldc: number,
  ): void;
  /** Sets the threads of OpenBLAS's own pool, for every later call. */
  setThreads(threads: number): void;
  /**
   * OpenBLAS's threads when it was opened: OPENBLAS_NUM_THREADS, else
   * every core.
   */
  defaultThreads: number;
  /** Returns the threads OpenBLAS uses. */
  threads(): number;
}

/** The outcome of {@linkcode loadOpenBlas}: the library or why it failed. */
export type OpenBlasLoad = { blas: OpenBlas } | { problem: string };

// Opened libraries by name. They are never unloaded (keepLoaded), because
// unloading OpenBLAS while its thread pool is alive crashed the process
// (seen with Debian's 0.3.21 pthread build).
const opened = new Map<string, OpenBlas>();

/**
 * Opens the first library of `libraries` that exports `cblas_sgemm` and
 * OpenBLAS's thread functions, or returns the one opened before.
 *
 * The FFI permission is queried first, so that Deno never prompts for it.
 *
 * @param libraries Names or paths for `Deno.dlopen`, tried in order.
 * @returns The library, or a one-line reason when none could be opened.
 */
export function loadOpenBlas(
  libraries: readonly string[] = OPENBLAS_LIBRARIES,
): OpenBlasLoad {
  const problem = ffiProblem();
  if (problem !== undefined) return { problem };
  const load = openFirst(libraries, SYMBOLS, opened, (library, handle) => {
    if (!keepLoaded(library)) {
      handle.close();
      throw new Error(
        "could not be kept loaded (dlopen with RTLD_NODELETE failed)",
      );
    }
    return wrap(library, handle);
  });
  if ("value" in load) return { blas: load.value };
  return {
    problem: `OpenBLAS could not be loaded (${load.failures.join("; ")}). ` +
      "Install it (Debian: apt-get install libopenblas0-pthread)",
  };
}

function wrap(
  library: string,
  handle: Deno.DynamicLibrary<typeof SYMBOLS>,
): OpenBlas {
  const symbols = handle.symbols;
  const configPointer = symbols.openblas_get_config();
  const config = configPointer === null
    ? "unknown"
    : Deno.UnsafePointerView.getCString(configPointer);
  return {
    library,
    config,
    defaultThreads: symbols.openblas_get_num_threads(),
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      symbols.cblas_sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
    },
    setThreads(threads) {
      symbols.openblas_set_num_threads(threads);
    },
    threads() {
      return symbols.openblas_get_num_threads();
    },
  };
}
