/**
 * Conv2D gradients written as forward convolutions, so that a backend with
 * a fast forward conv2d (XNNPACK on wasm) computes them at the same speed.
 * The functions use only public tfjs ops and run on any backend.
 *
 * Notation (NHWC): x [N, H, W, Ci], filter [kh, kw, Ci, Co],
 * dy [N, Ho, Wo, Co], strides (sh, sw), top and left padding (pt, pl).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** Explicit NHWC padding: [[0, 0], [top, bottom], [left, right], [0, 0]]. */
export type ExplicitPadding = tf.backend_util.ExplicitPadding;

/** Padding as the Conv2D kernels carry it in their attributes. */
export type ConvPad = "same" | "valid" | number | ExplicitPadding;

/** Attributes shared by Conv2DBackpropFilter and Conv2DBackpropInput. */
export interface ConvGradAttrs {
  /** Strides, one number for both axes or [sh, sw]. */
  strides: number | [number, number];
  /** Padding mode, symmetric amount or explicit NHWC pads. */
  pad: ConvPad;
  /** Layout, of which only "NHWC" is supported. @default "NHWC" */
  dataFormat?: "NHWC" | "NCHW";
  /** Rounding of a non-integer output size with a numeric pad. */
  dimRoundingMode?: "floor" | "round" | "ceil";
  /** Dilations, which must be 1 as in the tfjs Conv2D gradient. */
  dilations?: number | [number, number];
}

/**
 * Checks the layout and dilation attributes that these kernels support.
 *
 * @throws {Error} For NCHW data or dilations other than 1.
 */
export function checkConvGradAttrs(
  kernelName: string,
  attrs: ConvGradAttrs,
): void {
  const dataFormat = attrs.dataFormat ?? "NHWC";
  if (dataFormat !== "NHWC") {
    throw new Error(
      `${kernelName} on wasm: dataFormat '${dataFormat}' is not ` +
        "supported. Transpose the tensors to NHWC.",
    );
  }
  const dilations = attrs.dilations ?? 1;
  const [dh, dw] = typeof dilations === "number"
    ? [dilations, dilations]
    : dilations;
  if (dh !== 1 || dw !== 1) {
    throw new Error(
      `${kernelName} on wasm: dilations [${dh}, ${dw}] are not ` +
        "supported. Only dilations of 1 are.",
    );
  }
}

/** Resolves the forward convolution's geometry from the kernel attrs. */
export function convInfo(
  inputShape: number[],
  filterShape: number[],
  attrs: ConvGradAttrs,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
}

function checkShape(
  kernelName: string,
  tensorName: string,
  actual: number[],
  expected: number[],
): void {
  if (actual.join(",") !== expected.join(",")) {
    throw new Error(
      `${kernelName}: ${tensorName} has shape [${actual}] but the forward ` +
        `convolution implies [${expected}]`,
    );
  }
}

/**
 * Computes the Conv2D filter gradient dF [kh, kw, Ci, Co].
 *
 * dF[a, b, ci, co] sums x[n, i*sh - pt + a, j*sw - pl + b, ci] *
 * dy[n, i, j, co] over n, i, j. That is a stride-1 convolution whose batch
 * is Ci, whose input channels are N and whose filter is dy dilated by the
 * stride: conv2d(x^T [Ci, H, W, N], dy^T [Ho, Wo, N, Co], dilation s)
 * gives [Ci, kh, kw, Co].
 *
 * @param x Forward input, [N, H, W, Ci].
 * @param dy Gradient of the forward output, [N, Ho, Wo, Co].
 * @param filterShape Forward filter shape [kh, kw, Ci, Co].
 * @param attrs Forward convolution attributes.
 * @returns The filter gradient; the caller owns it.
 * @throws {Error} For unsupported attributes or inconsistent shapes.
 */
export function conv2dFilterGradViaConv(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: number[],
  attrs: ConvGradAttrs,
): tf.Tensor4D {
  const kernelName = "Conv2DBackpropFilter";
  checkConvGradAttrs(kernelName, attrs);
  const info = convInfo(x.shape, filterShape, attrs);
  checkShape(kernelName, "dy", dy.shape, info.outShape);
  const [kh, kw] = filterShape;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top: pt, left: pl } = info.padInfo;
  const [, height, width] = x.shape;
  const [, outHeight, outWidth] = dy.shape;

  return tf.tidy(() => {
    // Rows of the padded input that the forward conv reads: (Ho-1)*sh + kh.
    // A negative remainder means trailing rows were never read, so crop.
    const padBottom = (outHeight - 1) * sh + kh - pt - height;
    const padRight = (outWidth - 1) * sw + kw - pl - width;
    let input = x;
    if (padBottom < 0 || padRight < 0) {
      input = tf.slice(x, [0, 0, 0, 0], [
        -1,
        height + Math.min(padBottom, 0),
        width + Math.min(padRight, 0),
        -1,
      ]);
    }

    const inputT = tf.transpose(input, [3, 1, 2, 0]); // [Ci, H', W', N]
    const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, Co]
    const pads: ExplicitPadding = [
      [0, 0],
      [pt, Math.max(padBottom, 0)],
      [pl, Math.max(padRight, 0)],
      [0, 0],
    ];
    const grad = tf.conv2d(inputT, dyT, 1, pads, "NHWC", [sh, sw]);
    return tf.transpose(grad, [1, 2, 0, 3]); // [kh, kw, Ci, Co]
  });
}

/**
 * Inserts sh - 1 zero rows after every row of dy and sw - 1 zero columns
 * after every column, giving [N, Ho*sh, Wo*sw, Co].
 */
function dilateByStride(
  dy: tf.Tensor4D,
  sh: number,
  sw: number,
): tf.Tensor4D {
  if (sh === 1 && sw === 1) {
    return dy;
  }
  const [n, outHeight, outWidth, channels] = dy.shape;
  const split = tf.reshape(dy, [n, outHeight, 1, outWidth, 1, channels]);
  const padded = tf.pad(split, [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return tf.reshape(padded, [n, outHeight * sh, outWidth * sw, channels]);
}

/**
 * Computes the Conv2D input gradient dx [N, H, W, Ci].
 *
 * dx is the stride-1 convolution of dy, dilated by the stride and padded
 * by kh - 1 - pt on top, with the filter flipped in both spatial axes and
 * its channel axes swapped to [kh, kw, Co, Ci].
 *
 * @param dy Gradient of the forward output, [N, Ho, Wo, Co].
 * @param filter Forward filter, [kh, kw, Ci, Co].
 * @param inputShape Forward input shape [N, H, W, Ci].
 * @param attrs Forward convolution attributes.
 * @returns The input gradient; the caller owns it.
 * @throws {Error} For unsupported attributes or inconsistent shapes.
 */
export function conv2dInputGradViaConv(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: number[],
  attrs: ConvGradAttrs,
): tf.Tensor4D {
  const kernelName = "Conv2DBackpropInput";
  checkConvGradAttrs(kernelName, attrs);
  const info = convInfo(inputShape, filter.shape, attrs);
  checkShape(kernelName, "dy", dy.shape, info.outShape);
  const [kh, kw] = filter.shape;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top: pt, left: pl } = info.padInfo;
  const [, height, width] = inputShape;
  const [, outHeight, outWidth] = dy.shape;

  return tf.tidy(() => {
    // TODO: with stride s, (s*s - 1) / (s*s) of the taps hit inserted
    // zeros. Splitting dx into s*s phases, each a conv of the undilated dy
    // with a sub-filter, would skip them.
    const dilated = dilateByStride(dy, sh, sw);
    const [, dilatedHeight, dilatedWidth] = dilated.shape;

    // Pads around the dilated dy so that a stride-1 "valid" conv returns
    // H x W. Negative pads (large explicit forward pads, or rows the
    // forward conv never reached) become crops.
    const padTop = kh - 1 - pt;
    const padLeft = kw - 1 - pl;
    const padBottom = height + pt - outHeight * sh;
    const padRight = width + pl - outWidth * sw;
    let source = dilated;
    if (Math.min(padTop, padLeft, padBottom, padRight) < 0) {
      const cropTop = Math.max(-padTop, 0);
      const cropLeft = Math.max(-padLeft, 0);
      source = tf.slice(dilated, [0, cropTop, cropLeft, 0], [
        -1,
        dilatedHeight - cropTop - Math.max(-padBottom, 0),
        dilatedWidth - cropLeft - Math.max(-padRight, 0),
        -1,
      ]);
    }

    // [kh, kw, Ci, Co] -> flipped spatially, then [kh, kw, Co, Ci].
    const flipped = tf.reverse(filter, [0, 1]);
    const filterT = tf.transpose(flipped, [0, 1, 3, 2]);
    const pads: ExplicitPadding = [
      [0, 0],
      [Math.max(padTop, 0), Math.max(padBottom, 0)],
      [Math.max(padLeft, 0), Math.max(padRight, 0)],
      [0, 0],
    ];
    return tf.conv2d(source, filterT, 1, pads, "NHWC") as tf.Tensor4D;
  });
}
