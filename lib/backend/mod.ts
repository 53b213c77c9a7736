/**
 * Backend selection and the wasm training kernels.
 *
 * Call {@linkcode setupBackend} once before building models. It picks the
 * native `tensorflow` backend when one of the optional tfjs-node packages
 * imports, else `wasm` with the gradient kernels of
 * {@linkcode installWasmKernels}, else `cpu`.
 *
 * @module
 */

export {
  BACKEND_REQUESTS,
  type BackendInfo,
  type BackendRequest,
  type ImportModule,
  NATIVE_PACKAGES,
  setupBackend,
  type SetupBackendOptions,
} from "./select.ts";
export {
  BLAS_ENVIRONMENT_VARIABLE,
  type BlasInfo,
  type BlasKernelOptions,
  blasKernelsInfo,
  blasKernelsInstalled,
  installBlasKernels,
  uninstallBlasKernels,
} from "./blas_kernels.ts";
export { readsSynchronously } from "./_webgpu.ts";
export {
  installWasmKernels,
  uninstallWasmKernels,
  wasmKernelsInstalled,
} from "./wasm_kernels.ts";
