import assert from "node:assert/strict";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { inflateSync } from "node:zlib";
import { exportFigures, FIGURE_FORMATS } from "./export.ts";
import { figure3, type Figure3Run } from "./figure3.ts";
import { figure4 } from "./figure4.ts";

// Skipped with the reason printed where Debian's chromium is missing; with
// CI=true the test runs and fails instead, because CI installs chromium.
const chromium = "/usr/bin/chromium";
const chromiumProblem = await Deno.stat(chromium).then(
  () => undefined,
  (error) => `${chromium} is missing (${error.message})`,
);
const requireChromium = Deno.env.get("CI") === "true";
if (chromiumProblem !== undefined && !requireChromium) {
  console.log(`skipping the Chromium export test: ${chromiumProblem}`);
}

function runs(): Figure3Run[] {
  const list: Figure3Run[] = [];
  for (const rMax of [0.1, 0.3, 0.5]) {
    for (const seed of [0, 1]) {
      list.push({
        config: {
          method: "camdrop",
          seed,
          data: { dataset: "embedded" },
          camdrop: { rMax },
        },
        best: { test_acc: 0.5 + rMax / 4 + seed / 50 },
      });
    }
  }
  return list;
}

function batch() {
  const metrics = [0, 1, 2].map((epoch) => ({
    epoch,
    test_audio_acc_probe: 0.4 + 0.1 * epoch,
    test_visual_acc_probe: 0.2 + 0.05 * epoch,
    test_imbalance_probe: 2 - 0.2 * epoch,
  }));
  return [
    { name: "figure3", figure: figure3(runs()) },
    {
      name: "figure4",
      figure: figure4([{ label: "CAMDrop", method: "camdrop", metrics }]),
    },
  ];
}

/** Width, height and pixel bytes of an 8-bit RGB or RGBA PNG. */
function decodePng(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const bitDepth = bytes[24];
  const colorType = bytes[25];
  assert.equal(bitDepth, 8, "PNG bit depth");
  assert.ok(
    colorType === 6 || colorType === 2,
    `unexpected PNG colour type ${colorType}`,
  );
  const channels = colorType === 6 ? 4 : 3;

  const chunks: Uint8Array[] = [];
  for (let offset = 8; offset < bytes.length;) {
    const length = view.getUint32(offset);
    const type = new TextDecoder().decode(
      bytes.subarray(offset + 4, offset + 8),
    );
    if (type === "IDAT") {
      chunks.push(bytes.subarray(offset + 8, offset + 8 + length));
    }
    offset += 12 + length;
  }

  const raw = inflateSync(Buffer.concat(chunks));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  // Undo the per-row filters (PNG specification, section 9).
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const value = raw[y * (stride + 1) + 1 + x];
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0
        ? pixels[(y - 1) * stride + x - channels]
        : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = (value + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

Deno.test({
  name: "exportFigures() writes HTML, PNG, SVG and PDF",
  ignore: chromiumProblem !== undefined && !requireChromium,
  fn: async () => {
    if (chromiumProblem !== undefined) {
      throw new Error(`Chromium is required with CI=true: ${chromiumProblem}`);
    }
    const dir = await Deno.makeTempDir();
    try {
      const warnings: string[] = [];
      const result = await exportFigures(batch(), dir, FIGURE_FORMATS, {
        scale: 2,
        onWarning: (message) => warnings.push(message),
      });
      assert.deepEqual(warnings, []);
      assert.deepEqual(result.skipped, []);
      for (const name of ["figure3", "figure4"]) {
        const files = result.files[name];
        const html = await Deno.readTextFile(files.html!);
        assert.match(html, /Plotly\.newPlot/);
        const svg = await Deno.readTextFile(files.svg!);
        assert.match(svg.slice(0, 200), /<svg/);
        const pdf = await Deno.readFile(files.pdf!);
        assert.equal(new TextDecoder().decode(pdf.subarray(0, 5)), "%PDF-");
        const png = await Deno.readFile(files.png!);
        assert.deepEqual(
          [...png.subarray(0, 8)],
          [137, 80, 78, 71, 13, 10, 26, 10],
          `${name}.png lacks the PNG signature`,
        );
      }

      // Figure 3's layout is 520 x 420 CSS pixels; scale 2 doubles both.
      const image = decodePng(await Deno.readFile(result.files.figure3.png!));
      assert.equal(image.width, 1040);
      assert.equal(image.height, 840);
      const colors = new Set<number>();
      for (let i = 0; i < image.pixels.length; i += image.channels) {
        const [r, g, b] = image.pixels.subarray(i, i + 3);
        colors.add((r << 16) | (g << 8) | b);
      }
      assert.ok(colors.size >= 8, `only ${colors.size} distinct colours`);
      // The line colour (vermillion #D55E00) is drawn somewhere.
      assert.ok(colors.has(0xd55e00), "no pixel in the line colour");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("exportFigures() writes HTML only without Chromium", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const warnings: string[] = [];
    const missing = join(dir, "no-such-chromium");
    const result = await exportFigures(batch(), dir, FIGURE_FORMATS, {
      executablePath: missing,
      onWarning: (message) => warnings.push(message),
    });
    assert.equal(warnings.length, 1, "one warning for the whole batch");
    assert.match(warnings[0], /Chromium not found at .*no-such-chromium/);
    assert.match(warnings[0], /apt-get install chromium/);
    assert.deepEqual(result.skipped, ["png", "svg", "pdf"]);
    for (const name of ["figure3", "figure4"]) {
      assert.deepEqual(Object.keys(result.files[name]), ["html"]);
      assert.ok((await Deno.stat(result.files[name].html!)).size > 0);
    }
    const written = [];
    for await (const entry of Deno.readDir(dir)) written.push(entry.name);
    assert.deepEqual(written.sort(), [
      "figure3.html",
      "figure4.html",
      "plotly.js",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exportFigures() rejects repeated names", async () => {
  const [figure] = batch();
  await assert.rejects(
    () => exportFigures([figure, figure], "/nonexistent", ["html"]),
    /figure name "figure3" repeats/,
  );
});

Deno.test("exportFigures() rejects an unknown format", async () => {
  await assert.rejects(
    // @ts-expect-error: "gif" is not a FigureFormat.
    () => exportFigures(batch(), "/nonexistent", ["gif"]),
    /unknown format "gif"/,
  );
});
