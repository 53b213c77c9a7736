/**
 * Figure 1 of the CAMDrop paper: for each sample, the GradCAM over the
 * spectrogram and over the frame, and the positions a CAMDrop mask and a
 * random OPM-style mask at the same ratio zero.
 *
 * @module
 */

import type { PlotlyFigure } from "./figure4.ts";
import type { Figure1Data, Grid, ModalityMaps } from "./figure1_data.ts";
import {
  ACTIVATION_COLORSCALE,
  axis,
  BASE_LAYOUT,
  CAMDROP_MASK_COLOR,
  INPUT_COLORSCALE,
  RANDOM_MASK_COLOR,
} from "./style.ts";

/** Options of {@linkcode figure1}. */
export interface Figure1Options {
  /** Figure title. */
  title?: string;
  /** Opacity of the GradCAM drawn over the input, in [0, 1]. @default 0.6 */
  camOpacity?: number;
  /** Opacity of the zeroed positions drawn over the input. @default 0.8 */
  maskOpacity?: number;
  /**
   * Maximum spectrogram rows drawn: taller spectrograms are averaged over
   * groups of neighbouring frequency bins, which keeps the spec (and a
   * notebook that shows it) small.
   * @default 64
   */
  maxInputRows?: number;
  /** Significant digits of input values in the spec. @default 2 */
  inputDigits?: number;
}

/** Grid coordinates: the first cell's centre and the step between cells. */
interface Extent {
  x0: number;
  dx: number;
  y0: number;
  dy: number;
}

const WIDTH = 1050;
const ROW_HEIGHT = 210;
const MARGIN = { l: 80, r: 90, t: 100, b: 60 };
// Column positions in the paper's domain [0, 1]: three audio panels, a
// wider gap, three visual panels.
const COLUMNS: [number, number][] = [
  [0, 0.135],
  [0.155, 0.29],
  [0.31, 0.445],
  [0.555, 0.69],
  [0.71, 0.845],
  [0.865, 1],
];

/**
 * Builds Figure 1 from {@linkcode figure1Data}'s arrays: one row per
 * sample and six heatmap panels per row (audio GradCAM, CAMDrop mask,
 * random mask, then the same for the frame).
 * @throws {Error} If `data` contains no samples.
 */
export function figure1(
  data: Figure1Data,
  options: Figure1Options = {},
): PlotlyFigure {
  const rows = data.samples.length;
  if (rows === 0) throw new Error("figure1: data contains no samples.");
  const camOpacity = options.camOpacity ?? 0.6;
  const maskOpacity = options.maskOpacity ?? 0.8;
  const maxInputRows = options.maxInputRows ?? 64;
  const inputDigits = options.inputDigits ?? 2;
  const traces: Record<string, unknown>[] = [];
  const layout: Record<string, unknown> = {
    ...BASE_LAYOUT,
    title: {
      text: options.title ??
        `GradCAM and masks at ratio ${data.ratio} (CAMDrop vs random)`,
    },
    width: WIDTH,
    height: MARGIN.t + MARGIN.b + ROW_HEIGHT * rows,
    margin: MARGIN,
    showlegend: false,
  };
  const annotations: Record<string, unknown>[] = [];
  const percent = Math.round(100 * data.ratio);
  const titles = ["Audio", "Frame"].flatMap((modality) => [
    [`${modality}<br>GradCAM`, "#000"],
    [`${modality}: CAMDrop<br>${percent}% zeroed`, CAMDROP_MASK_COLOR],
    [`${modality}: random<br>${percent}% zeroed`, RANDOM_MASK_COLOR],
  ]);
  titles.forEach(([text, color], col) => {
    annotations.push({
      text: `<b>${text}</b>`,
      font: { color, size: 12 },
      xref: "paper",
      yref: "paper",
      x: (COLUMNS[col][0] + COLUMNS[col][1]) / 2,
      y: 1,
      yshift: 8,
      showarrow: false,
      xanchor: "center",
      yanchor: "bottom",
    });
  });

  data.samples.forEach((sample, row) => {
    const top = 1 - row / rows;
    const bottom = 1 - (row + 1) / rows + 0.12 / rows;
    const modalities: [ModalityMaps, boolean][] = [
      [sample.audio, true],
      [sample.visual, false],
    ];
    modalities.forEach(([maps, isAudio], m) => {
      const rawExtent = isAudio
        ? {
          x0: 0,
          dx: data.secondsPerFrame,
          y0: 0,
          dy: data.hertzPerBin / 1000,
        }
        : { x0: 0, dx: 1, y0: 0, dy: 1 };
      const mapExtent = cellExtent(maps.input, maps.cam, rawExtent);
      const { input, extent } = displayInput(
        maps.input,
        rawExtent,
        isAudio ? maxInputRows : Infinity,
        inputDigits,
      );
      for (let panel = 0; panel < 3; panel++) {
        const col = 3 * m + panel;
        const id = row * 6 + col + 1;
        const xName = `x${id === 1 ? "" : id}`;
        const yName = `y${id === 1 ? "" : id}`;
        const onAxes = { xaxis: xName, yaxis: yName };

        // The input in greys under every panel.
        traces.push({
          type: "heatmap",
          z: input,
          ...extent,
          colorscale: INPUT_COLORSCALE,
          showscale: false,
          hoverinfo: "skip",
          ...onAxes,
        });
        if (panel === 0) {
          traces.push({
            type: "heatmap",
            z: maps.cam,
            ...mapExtent,
            zmin: 0,
            zmax: 1,
            zsmooth: "best",
            opacity: camOpacity,
            colorscale: ACTIVATION_COLORSCALE,
            showscale: id === 1,
            colorbar: {
              title: { text: "GradCAM<br>(÷ max)", side: "right" },
              x: 1.01,
              len: 0.5,
              y: 1,
              yanchor: "top",
              thickness: 12,
            },
            name: "GradCAM",
            ...onAxes,
          });
        } else {
          const mask = panel === 1 ? maps.camDropMask : maps.randomMask;
          const color = panel === 1 ? CAMDROP_MASK_COLOR : RANDOM_MASK_COLOR;
          traces.push({
            type: "heatmap",
            // Zeroed positions get a value; kept ones stay transparent.
            z: mask.map((line) => line.map((v) => v === 0 ? 1 : null)),
            ...mapExtent,
            zmin: 0,
            zmax: 1,
            opacity: maskOpacity,
            colorscale: [[0, color], [1, color]],
            showscale: false,
            name: panel === 1 ? "CAMDrop mask" : "Random mask",
            ...onAxes,
          });
        }

        const lastRow = row === rows - 1;
        let xTitle = "";
        if (lastRow) xTitle = isAudio ? "Time (s)" : "Width (pixels)";
        // The class name heads each row's first axis title.
        const yTitle = panel !== 0
          ? ""
          : isAudio
          ? `<b>${sample.className}</b><br>Frequency (kHz)`
          : "Height (pixels)";
        layout[`xaxis${id === 1 ? "" : id}`] = axis(xTitle, {
          domain: COLUMNS[col],
          anchor: yName,
          showgrid: false,
          showticklabels: lastRow,
          ticks: lastRow ? "outside" : "",
        });
        layout[`yaxis${id === 1 ? "" : id}`] = axis(yTitle, {
          domain: [bottom, top],
          anchor: xName,
          showgrid: false,
          showticklabels: panel === 0,
          ticks: panel === 0 ? "outside" : "",
          // Images are drawn with row 0 at the top.
          autorange: isAudio ? true : "reversed",
        });
      }
    });
  });
  layout.annotations = annotations;
  return { data: traces, layout };
}

/**
 * Places a coarse map (a CAM or a mask, [h][w]) over the extent of its
 * input ([H][W], cells centred at x0 + i dx), so that both cover the same
 * area.
 */
function cellExtent(input: Grid, map: Grid, extent: Extent): Extent {
  const inputRows = input.length;
  const inputColumns = input[0]?.length ?? 0;
  const dx = extent.dx * inputColumns / (map[0]?.length || 1);
  const dy = extent.dy * inputRows / (map.length || 1);
  return {
    x0: extent.x0 - extent.dx / 2 + dx / 2,
    dx,
    y0: extent.y0 - extent.dy / 2 + dy / 2,
    dy,
  };
}

/**
 * Averages groups of `factor` neighbouring rows so at most `maxRows`
 * remain, rounds values to `digits` significant digits, and moves the
 * extent to the centres of the averaged rows.
 */
function displayInput(
  grid: Grid,
  extent: Extent,
  maxRows: number,
  digits: number,
): { input: Grid; extent: Extent } {
  const factor = Math.max(1, Math.ceil(grid.length / maxRows));
  const round = (v: number) => Number(v.toPrecision(digits));
  if (factor === 1) {
    return { input: grid.map((line) => line.map(round)), extent };
  }
  const input: Grid = [];
  for (let start = 0; start < grid.length; start += factor) {
    const group = grid.slice(start, start + factor);
    input.push(
      group[0].map((_, col) =>
        round(group.reduce((sum, line) => sum + line[col], 0) / group.length)
      ),
    );
  }
  return {
    input,
    extent: {
      ...extent,
      y0: extent.y0 + extent.dy * (factor - 1) / 2,
      dy: extent.dy * factor,
    },
  };
}
