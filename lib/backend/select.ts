/**
 * Chooses and activates the TensorFlow.js backend for training.
 *
 * `auto` takes the native `tensorflow` backend when `@tensorflow/tfjs-node-gpu`
 * or `@tensorflow/tfjs-node` can be imported and activated, else `wasm`
 * with the gradient kernels of `wasm_kernels.ts`, else `cpu`. `webgpu`
 * runs only on request. The backend that counts is the one
 * `tf.getBackend()` reports after activation, not the one whose package
 * imported.
 *
 * Limitations: the native packages are optional and never dependencies of
 * this toolkit, because their install step downloads libtensorflow. When
 * a backend fails to initialise, tfjs itself prints a warning with a
 * stack trace (tfjs-core 4.22 `engine.initializeBackend`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { findWebGpuProblem, firstLine, runtimeGpu } from "./_webgpu.ts";
import { installWasmKernels, wasmKernelsInstalled } from "./wasm_kernels.ts";
import {
  type BlasInfo,
  type BlasKernelOptions,
  blasKernelsInfo,
  blasKernelsInstalled,
  blasRequestedByEnvironment,
  CONVOLUTION_LIBRARIES,
  CONVOLUTIONS_ENVIRONMENT_VARIABLE,
  convolutionsByEnvironment,
  installBlasKernels,
  uninstallBlasKernels,
} from "./blas_kernels.ts";

/** A backend request: a tfjs backend name or "auto". */
export type BackendRequest = "auto" | "tensorflow" | "wasm" | "webgpu" | "cpu";

/** Every valid {@linkcode BackendRequest}, in documentation order. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = [
  "auto",
  "tensorflow",
  "wasm",
  "webgpu",
  "cpu",
];

/** Native packages that register the `tensorflow` backend, tried in order. */
export const NATIVE_PACKAGES: readonly string[] = [
  "@tensorflow/tfjs-node-gpu",
  "@tensorflow/tfjs-node",
];

const WASM_PACKAGE = "@tensorflow/tfjs-backend-wasm";
const BACKEND_WASM = "wasm";
const WEBGPU_PACKAGE = "@tensorflow/tfjs-backend-webgpu";

/** A function that imports a module by its specifier. */
export type ImportModule = (specifier: string) => Promise<unknown>;

/** Options of {@linkcode setupBackend}. */
export interface SetupBackendOptions {
  /**
   * Imports backend packages; tests pass a fake to cover the native path.
   * @default a dynamic `import()` of the specifier
   */
  importModule?: ImportModule;
  /** Receives one message for each fallback to another backend. */
  onWarning?: (message: string) => void;
  /**
   * Whether to install the wasm gradient kernels when wasm is chosen.
   * @default true
   */
  installKernels?: boolean;
  /**
   * Whether to run the wasm backend's convolutions and a few other kernels
   * on a native library, oneDNN or OpenBLAS
   * ({@linkcode installBlasKernels}), with its options. Only takes effect
   * with `installKernels`. When both libraries or `--allow-ffi` are
   * missing, the plain wasm kernels run and `onWarning` receives the
   * reason.
   * @default true, unless the environment variable CAMDROP_BLAS is "0",
   *   "false" or "off"
   */
  blas?: boolean | BlasKernelOptions;
}

/** The outcome of {@linkcode setupBackend}. */
export interface BackendInfo {
  /** The request as given. */
  requested: BackendRequest;
  /** The active backend, read from `tf.getBackend()` after activation. */
  name: string;
  /** Reasons the earlier candidates were skipped, when `name` is a fallback. */
  fallbackReason?: string;
  /** Version of the tfjs union package, e.g. "4.22.0". */
  tfjsVersion: string;
  /**
   * Whether a native package was imported during this call. Only the requests
   * "auto" and "tensorflow" try to import one; the others report false.
   */
  nativeAvailable: boolean;
  /** The native package that was imported, if any. */
  nativePackage?: string;
  /** Whether the wasm gradient kernels are installed. */
  wasmKernels: boolean;
  /** Whether the wasm convolutions run on a native library, and why not. */
  blas: BlasInfo;
}

const defaultImport: ImportModule = (specifier) => import(specifier);

/**
 * Activates `name` and checks that tfjs reports it as active.
 *
 * @returns Undefined on success, else why activation failed.
 */
async function activate(name: string): Promise<string | undefined> {
  if (tf.findBackendFactory(name) == null) {
    return `no '${name}' backend is registered`;
  }
  let succeeded: boolean;
  try {
    succeeded = await tf.setBackend(name);
  } catch (error) {
    return `tf.setBackend('${name}') failed: ${firstLine(error)}`;
  }
  // A failed initialisation returns false but can leave the failed name in
  // the engine, so check both.
  const active = tf.getBackend();
  if (!succeeded || active !== name) {
    return `tf.setBackend('${name}') did not activate it ` +
      `(initialisation failed, active backend '${active}')`;
  }
  return undefined;
}

interface NativeProbe {
  /** The package that was imported, if any. */
  imported?: string;
  /** Reason the `tensorflow` backend is not active, when it is not. */
  problem?: string;
}

/** Imports the first native package that loads and activates it. */
async function tryNative(importModule: ImportModule): Promise<NativeProbe> {
  const failures: string[] = [];
  for (const specifier of NATIVE_PACKAGES) {
    try {
      await importModule(specifier);
    } catch (error) {
      failures.push(`${specifier}: ${firstLine(error)}`);
      continue;
    }
    const problem = await activate("tensorflow");
    if (problem === undefined) {
      return { imported: specifier };
    }
    return {
      imported: specifier,
      problem: `${specifier} imported but ${problem}`,
    };
  }
  return {
    problem: `no native package could be imported (${failures.join("; ")})`,
  };
}

/** Imports the wasm backend, installs the kernels and activates it. */
async function tryWasm(
  importModule: ImportModule,
  installKernels: boolean,
  blas: false | BlasKernelOptions,
  onBlasProblem: (reason: string) => void,
): Promise<string | undefined> {
  try {
    await importModule(WASM_PACKAGE);
  } catch (error) {
    return `${WASM_PACKAGE} could not be imported: ${firstLine(error)}`;
  }
  if (installKernels) {
    try {
      installWasmKernels();
    } catch (error) {
      return firstLine(error);
    }
    if (blas === false) {
      uninstallBlasKernels();
    } else {
      let outcome: BlasInfo;
      try {
        outcome = installBlasKernels(blas);
      } catch (error) {
        // An invalid thread count: the request fails, and the caller
        // restores the backend that was active before.
        return firstLine(error);
      }
      if (!outcome.used) onBlasProblem(outcome.reason ?? "unknown reason");
    }
  }
  return await activate("wasm");
}

/** Resolves the `blas` option: false, or the options to install with. */
function blasRequest(
  option: SetupBackendOptions["blas"],
): false | BlasKernelOptions {
  const requested = option ?? blasRequestedByEnvironment();
  if (requested === false) return false;
  return requested === true ? {} : requested;
}

/** Imports the webgpu backend after checking for an adapter. */
async function tryWebGpu(importModule: ImportModule) {
  const missing = await findWebGpuProblem(runtimeGpu());
  if (missing !== undefined) {
    return missing;
  }
  try {
    await importModule(WEBGPU_PACKAGE);
  } catch (error) {
    return `${WEBGPU_PACKAGE} could not be imported: ${firstLine(error)}`;
  }
  return await activate("webgpu");
}

/** Describes whether the active backend's convolutions run natively. */
function blasInfo(
  active: string,
  request: false | BlasKernelOptions,
  problem: string | undefined,
): BlasInfo {
  if (active === BACKEND_WASM && blasKernelsInstalled()) {
    return blasKernelsInfo();
  }
  let reason = problem;
  if (active !== BACKEND_WASM) {
    reason = `the active backend is '${active}', not wasm`;
  } else if (request === false) {
    reason = "turned off (option blas: false or CAMDROP_BLAS=0)";
  } else if (reason === undefined) {
    reason = "the wasm kernels were not installed (installKernels: false)";
  }
  return { used: false, reason };
}

/** Reactivates `previous` after a failed explicit request, if it was set. */
async function restore(previous: string | null): Promise<void> {
  if (previous != null && tf.getBackend() !== previous) {
    await activate(previous);
  }
}

/**
 * Chooses, loads and activates a tfjs backend.
 *
 * @example
 * ```ts
 * import { setupBackend } from "./select.ts";
 *
 * const info = await setupBackend("auto");
 * console.log(info.name, info.fallbackReason ?? "");
 * ```
 *
 * @param request The backend to use, or "auto" for the fastest available.
 * @param options Import function, warning callback and kernel switch.
 * @returns The backend that tfjs reports as active and how it was chosen.
 * @throws {Error} If `request` is not a {@linkcode BackendRequest}, or an
 *   explicitly requested backend cannot be activated. The message names
 *   what is missing.
 */
export async function setupBackend(
  request: BackendRequest,
  options: SetupBackendOptions = {},
): Promise<BackendInfo> {
  if (!BACKEND_REQUESTS.includes(request)) {
    throw new Error(
      `setupBackend: invalid backend '${request}'. Expected one of ` +
        BACKEND_REQUESTS.join(", "),
    );
  }
  const importModule = options.importModule ?? defaultImport;
  const installKernels = options.installKernels ?? true;
  const blas = blasRequest(options.blas);
  if (blas !== false) {
    // A mistyped library is a usage error, not a reason to fall back to
    // a slower backend.
    const convolutions = blas.convolutions ?? convolutionsByEnvironment();
    if (!CONVOLUTION_LIBRARIES.includes(convolutions)) {
      const source = blas.convolutions === undefined
        ? `${CONVOLUTIONS_ENVIRONMENT_VARIABLE}=${convolutions}`
        : `blas.convolutions '${convolutions}'`;
      throw new Error(
        `setupBackend: invalid convolution library (${source}). Expected ` +
          `one of ${CONVOLUTION_LIBRARIES.join(", ")}`,
      );
    }
  }
  let blasReason: string | undefined;
  const previous = tf.engine().backendName;
  const reasons: string[] = [];
  let native: NativeProbe = {};

  const fail = async (message: string): Promise<never> => {
    await restore(previous);
    throw new Error(`setupBackend: ${message}`);
  };
  const fallBack = (message: string) => {
    reasons.push(message);
    options.onWarning?.(`setupBackend: ${message}. Trying the next backend.`);
  };

  if (request === "tensorflow" || request === "auto") {
    native = await tryNative(importModule);
    if (native.problem !== undefined && request === "tensorflow") {
      await fail(
        `backend 'tensorflow' is unavailable: ${native.problem}. Install ` +
          "@tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node with " +
          "npm on a machine with internet access (the install downloads " +
          "libtensorflow), or request 'wasm'",
      );
    }
    if (native.problem !== undefined) {
      fallBack(`'tensorflow' skipped: ${native.problem}`);
    }
  }

  if (request === "webgpu") {
    const problem = await tryWebGpu(importModule);
    if (problem !== undefined) {
      await fail(`backend 'webgpu' is unavailable: ${problem}`);
    }
  }

  const nativeActive = request === "auto" && native.problem === undefined;
  if (request === "wasm" || (request === "auto" && !nativeActive)) {
    const problem = await tryWasm(
      importModule,
      installKernels,
      blas,
      (reason) => {
        blasReason = reason;
        options.onWarning?.(
          `setupBackend: the accelerated kernels (oneDNN or OpenBLAS) are ` +
            `not in use: ` +
            `${reason}. The plain wasm kernels run instead.`,
        );
      },
    );
    if (problem !== undefined && request === "wasm") {
      await fail(`backend 'wasm' is unavailable: ${problem}`);
    }
    if (problem !== undefined) {
      fallBack(`'wasm' skipped: ${problem}`);
    }
  }

  const fallenToCpu = request === "auto" && reasons.length === 2;
  if (request === "cpu" || fallenToCpu) {
    const problem = await activate("cpu");
    if (problem !== undefined) {
      await fail(`backend 'cpu' is unavailable: ${problem}`);
    }
  }

  const info: BackendInfo = {
    requested: request,
    name: tf.getBackend(),
    tfjsVersion: tf.version.tfjs,
    nativeAvailable: native.imported !== undefined,
    wasmKernels: wasmKernelsInstalled(),
    blas: blasInfo(tf.getBackend(), blas, blasReason),
  };
  if (native.imported !== undefined) {
    info.nativePackage = native.imported;
  }
  if (reasons.length > 0) {
    info.fallbackReason = reasons.join("; ");
  }
  return info;
}
