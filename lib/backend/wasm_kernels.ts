/**
 * Training kernels for the tfjs wasm backend (tfjs-backend-wasm 4.22),
 * which ships without `Conv2DBackpropFilter`, with a slow
 * `Conv2DBackpropInput` and with a batch-norm gradient that spends its
 * time in `Tile`. {@linkcode installWasmKernels} registers:
 *
 * - `Conv2DBackpropFilter`: a conv2d of the transposed input with the
 *   transposed output gradient, dilated by the stride.
 * - `Conv2DBackpropInput`, replacing the shipped one: a conv2d of the
 *   stride-dilated, padded output gradient with the spatially flipped,
 *   in/out-transposed filter.
 * - a `FusedBatchNorm` gradient from broadcasting ops, without `Tile`.
 *
 * All three run the backend's own XNNPACK conv2d and elementwise kernels.
 *
 * Limitations: NHWC only, dilations of 1 only (the tfjs Conv2D gradient
 * requires both as well). Kernels and gradients live in tfjs's global
 * registries, so installation affects every user of the same tfjs copy.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  conv2dFilterGradViaConv,
  conv2dInputGradViaConv,
  type ConvGradAttrs,
} from "./_conv_grads.ts";
import { batchNormGrads } from "./_batch_norm_grad.ts";
import { blasKernelsInstalled, uninstallBlasKernels } from "./blas_kernels.ts";

const BACKEND = "wasm";

interface InstalledState {
  /** The shipped Conv2DBackpropInput kernel, restored on uninstall. */
  shippedInputGrad: tf.KernelConfig | undefined;
  /** The tfjs-core FusedBatchNorm gradient, used on other backends. */
  coreBatchNormGrad: tf.GradConfig | undefined;
}

let installed: InstalledState | undefined;

/**
 * Returns a Tensor for a kernel input. The engine passes Tensors, and a bare
 * TensorInfo is wrapped after one extra backend reference, so disposing
 * the wrapper leaves the caller's data alive.
 */
function asTensor<R extends tf.Rank>(
  inputs: tf.NamedTensorInfoMap,
  name: string,
  backend: unknown,
): tf.Tensor<R> {
  const info = inputs[name];
  if (info === undefined) {
    throw new Error(`wasm gradient kernel: input '${name}' is missing`);
  }
  if (info instanceof tf.Tensor) {
    return info as tf.Tensor<R>;
  }
  (backend as tf.KernelBackend).incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
}

// A kernelFunc may return a Tensor: the engine then uses it as the output
// (tfjs-core 4.22 engine.runKernelFunc). The tidy inside each helper
// disposes every intermediate, so one new tensor is left per call.

const filterGradKernel: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { filterShape } = attrs as unknown as { filterShape: number[] };
    return tf.tidy(() => {
      const x = asTensor<tf.Rank.R4>(inputs, "x", backend);
      const dy = asTensor<tf.Rank.R4>(inputs, "dy", backend);
      return conv2dFilterGradViaConv(
        x,
        dy,
        filterShape,
        attrs as unknown as ConvGradAttrs,
      );
    });
  },
};

const inputGradKernel: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { inputShape } = attrs as unknown as { inputShape: number[] };
    return tf.tidy(() => {
      const dy = asTensor<tf.Rank.R4>(inputs, "dy", backend);
      const filter = asTensor<tf.Rank.R4>(inputs, "filter", backend);
      return conv2dInputGradViaConv(
        dy,
        filter,
        inputShape,
        attrs as unknown as ConvGradAttrs,
      );
    });
  },
};

/**
 * Builds the FusedBatchNorm gradient config: ours while the wasm backend
 * is active, tfjs-core's on every other backend.
 */
function batchNormGradConfig(core: tf.GradConfig | undefined): tf.GradConfig {
  return {
    kernelName: tf.FusedBatchNorm,
    inputsToSave: ["x", "mean", "variance", "scale"],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== BACKEND && core?.gradFunc != null) {
        return core.gradFunc(dy, saved, attrs);
      }
      const { varianceEpsilon } = attrs as unknown as {
        varianceEpsilon: number;
      };
      return batchNormGrads(dy as tf.Tensor, saved, varianceEpsilon);
    },
  };
}

/**
 * Registers the Conv2D gradient kernels on the wasm backend and the
 * Tile-free FusedBatchNorm gradient. Calling it again does nothing.
 *
 * The gradient registry of tfjs is global, so the batch-norm gradient is
 * replaced for every backend. The replacement checks `tf.getBackend()` at
 * each call and runs tfjs-core's gradient on backends other than wasm.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { installWasmKernels } from "./wasm_kernels.ts";
 *
 * installWasmKernels();
 * await tf.setBackend("wasm");
 * ```
 *
 * @throws {Error} If `@tensorflow/tfjs-backend-wasm` has not been imported,
 *   because its own registration would later replace ours, or when the
 *   BLAS kernels are already installed.
 */
export function installWasmKernels(): void {
  if (installed !== undefined) {
    return;
  }
  if (blasKernelsInstalled()) {
    throw new Error(
      "installWasmKernels: the BLAS kernels are installed, and these " +
        "kernels would replace their gradients. Install the wasm kernels " +
        "first, or call uninstallBlasKernels().",
    );
  }
  if (tf.findBackendFactory(BACKEND) == null) {
    throw new Error(
      "installWasmKernels: the wasm backend is not registered. Import " +
        "'@tensorflow/tfjs-backend-wasm' before installing the kernels.",
    );
  }

  const shippedInputGrad = tf.getKernel(tf.Conv2DBackpropInput, BACKEND);
  const coreBatchNormGrad = tf.getGradient(tf.FusedBatchNorm);
  for (const kernel of [filterGradKernel, inputGradKernel]) {
    // Unregister first: registerKernel prints a warning on replacement.
    if (tf.getKernel(kernel.kernelName, BACKEND) != null) {
      tf.unregisterKernel(kernel.kernelName, BACKEND);
    }
    tf.registerKernel(kernel);
  }
  tf.registerGradient(batchNormGradConfig(coreBatchNormGrad));
  installed = { shippedInputGrad, coreBatchNormGrad };
}

/**
 * Removes what {@linkcode installWasmKernels} registered, and the BLAS
 * kernels if installed, and restores the shipped `Conv2D` and
 * `Conv2DBackpropInput` kernels and tfjs-core's batch-norm gradient, so
 * the shipped kernels can be measured or compared. Does nothing when the
 * kernels are not installed.
 */
export function uninstallWasmKernels(): void {
  if (installed === undefined) {
    return;
  }
  // The BLAS kernels would otherwise restore ours later.
  uninstallBlasKernels();
  for (const kernel of [filterGradKernel, inputGradKernel]) {
    if (tf.getKernel(kernel.kernelName, BACKEND) != null) {
      tf.unregisterKernel(kernel.kernelName, BACKEND);
    }
  }
  const shipped = installed.shippedInputGrad;
  if (shipped !== undefined) {
    tf.registerKernel(shipped);
    // tfjs runs setupFunc (which binds the wasm function) only when a
    // backend is set, so a running backend needs it called here.
    const backend = tf.findBackend(BACKEND);
    if (backend != null) {
      shipped.setupFunc?.(backend);
    }
  }
  tf.unregisterGradient(tf.FusedBatchNorm);
  if (installed.coreBatchNormGrad !== undefined) {
    tf.registerGradient(installed.coreBatchNormGrad);
  }
  installed = undefined;
}

/**
 * Reports whether {@linkcode installWasmKernels} is in effect.
 *
 * @returns True between an install and the next uninstall.
 */
export function wasmKernelsInstalled(): boolean {
  return installed !== undefined;
}
