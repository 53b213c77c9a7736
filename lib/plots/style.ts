/**
 * The shared look of every figure: Okabe-Ito colour-blind-safe palette,
 * fonts readable at column width, white background.
 *
 * @module
 */

/** Okabe-Ito palette (Okabe and Ito, "Color Universal Design", 2008). */
export const PALETTE = {
  black: "#000000",
  orange: "#E69F00",
  skyBlue: "#56B4E9",
  green: "#009E73",
  yellow: "#F0E442",
  blue: "#0072B2",
  vermillion: "#D55E00",
  purple: "#CC79A7",
} as const;

/** Colour per method, the same in every figure. */
export const METHOD_COLORS: Record<string, string> = {
  naive: PALETTE.black,
  camdrop: PALETTE.vermillion,
  ogm: PALETTE.blue,
  "ogm-ge": PALETTE.blue,
  opm: PALETTE.green,
  gb: PALETTE.purple,
  pmr: PALETTE.orange,
};

/** Layout fields shared by every figure. */
export const BASE_LAYOUT: Record<string, unknown> = {
  // Liberation Sans (Debian's fonts-liberation) has Arial's metrics, so
  // text takes the same space where Arial itself is missing.
  font: {
    family: "Arial, Liberation Sans, Helvetica, sans-serif",
    size: 13,
    color: "#000",
  },
  paper_bgcolor: "#fff",
  plot_bgcolor: "#fff",
  margin: { l: 60, r: 20, t: 50, b: 90 },
  legend: { orientation: "h", x: 0, y: -0.3, yanchor: "top" },
};

/** Axis style shared by every figure. */
export function axis(title: string, extra: Record<string, unknown> = {}) {
  return {
    title: { text: title },
    showline: true,
    linecolor: "#000",
    ticks: "outside",
    gridcolor: "#e5e5e5",
    zeroline: false,
    ...extra,
  };
}

/**
 * Sequential colour scale of activation maps: viridis, which stays
 * ordered in lightness for colour-blind readers and in greyscale print.
 */
export const ACTIVATION_COLORSCALE = "Viridis";

/** Grey scale of input spectrograms and frames, dark for low values. */
export const INPUT_COLORSCALE: [number, string][] = [
  [0, "#000000"],
  [1, "#ffffff"],
];

/** Colour of positions a CAMDrop mask zeroes. */
export const CAMDROP_MASK_COLOR = PALETTE.vermillion;

/** Colour of positions a random (OPM-style) mask zeroes. */
export const RANDOM_MASK_COLOR = PALETTE.skyBlue;
