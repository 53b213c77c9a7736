/**
 * Checks that WebGPU can give tfjs an adapter, so that a failed request
 * gets one clear line in place of the stack trace that tfjs prints. Also
 * reports whether a backend can read tensor values synchronously.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** The part of `navigator.gpu` this check uses. */
export interface GpuLike {
  /** Requests an adapter, resolving to null when none exists. */
  requestAdapter(): Promise<unknown>;
}

/** Returns `navigator.gpu` of this runtime, or undefined without one. */
export function runtimeGpu(): GpuLike | undefined {
  const navigator = (globalThis as { navigator?: { gpu?: GpuLike } })
    .navigator;
  return navigator?.gpu;
}

/**
 * Finds what stops WebGPU from running here.
 *
 * @param gpu The runtime's `navigator.gpu`, or undefined without one.
 * @returns A one-line description of what is missing, or undefined when an
 *   adapter exists.
 */
export async function findWebGpuProblem(
  gpu: GpuLike | undefined,
): Promise<string | undefined> {
  if (gpu === undefined || typeof gpu.requestAdapter !== "function") {
    return "WebGPU is missing: navigator.gpu is undefined; run Deno with " +
      "--unstable-webgpu (needed by older Deno releases) or use a runtime " +
      "with WebGPU";
  }
  let adapter: unknown;
  try {
    adapter = await gpu.requestAdapter();
  } catch (error) {
    return `WebGPU adapter request failed: ${firstLine(error)}`;
  }
  if (adapter == null) {
    return "WebGPU has no adapter: install a GPU driver with Vulkan " +
      "support (libvulkan1 and a vendor driver), or mesa-vulkan-drivers " +
      "for a slow software adapter";
  }
  return undefined;
}

let canvasReadback: boolean | undefined;

/**
 * Reports whether `backend` can return tensor values synchronously
 * (`dataSync()`, `arraySync()`). Every backend can, except webgpu in a
 * runtime without a 2d `OffscreenCanvas`, which includes Deno 2.9. Code
 * that must also run there reads with `await tensor.data()`.
 *
 * @param backend A tfjs backend name; the active backend when omitted.
 */
export function readsSynchronously(backend: string = tf.getBackend()): boolean {
  return backend !== "webgpu" || hasCanvasReadback();
}

/**
 * Reports whether this runtime has the 2d `OffscreenCanvas` context through
 * which tfjs-backend-webgpu 4.22 reads GPU buffers synchronously
 * (`readSync`, used by `dataSync()`). WebGPU itself maps buffers only
 * asynchronously. Deno 2.9 defines `OffscreenCanvas` but returns null for
 * a 2d context, so `dataSync()` on a webgpu tensor raises a TypeError there.
 */
function hasCanvasReadback(): boolean {
  if (canvasReadback === undefined) {
    const Canvas = (globalThis as {
      OffscreenCanvas?: new (width: number, height: number) => {
        getContext(kind: string): unknown;
      };
    }).OffscreenCanvas;
    canvasReadback = Canvas !== undefined &&
      new Canvas(1, 1).getContext("2d") != null;
  }
  return canvasReadback;
}

/** Returns the first line of an error's message. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0].trim();
}
