import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DISK_DATASET_KINDS,
  type DiskDatasetKind,
  type LayoutPaths,
  parseLayout,
  splitCsvLine,
} from "./_layouts.ts";

const CREMAD: LayoutPaths = {
  splitFiles: { train: "train.csv", test: "test.csv" },
  requiredSplits: ["train", "test"],
  audioDir: "AudioWAV",
  framesDir: "Image-01-FPS",
};
const AVE: LayoutPaths = {
  splitFiles: { train: "trainSet.txt", val: "valSet.txt", test: "testSet.txt" },
  requiredSplits: ["train", "val", "test"],
  audioDir: "Audio",
  framesDir: "Image-01-FPS",
};
const KS: LayoutPaths = {
  splitFiles: { train: "train.csv", val: "val.csv", test: "test.csv" },
  requiredSplits: ["train", "test"],
  audioDir: "audio",
  framesDir: "visual",
};
const MANIFEST: LayoutPaths = {
  splitFiles: {},
  requiredSplits: [],
  audioDir: "",
  framesDir: "",
};

/** Writes `files` into a new folder and returns its path. */
async function folder(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-layout-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(dir, name), text);
  }
  return dir;
}

Deno.test("parseLayout() reads CREMA-D split files", async () => {
  const dir = await folder({
    "train.csv": "1001_DFA_ANG_XX,ANG\n1002_IEO_NEU_LO,NEU\r\n\n",
    "test.csv": "1003_TIE_SAD_XX,SAD\n",
  });
  const layout = parseLayout("cremad", dir, CREMAD);
  assert.deepEqual(layout.classNames, [
    "NEU",
    "HAP",
    "SAD",
    "FEA",
    "DIS",
    "ANG",
  ]);
  assert.equal(layout.splits.val, undefined, "no validation list");
  assert.deepEqual(layout.splits.train.map((e) => e.label), [5, 0]);
  assert.equal(layout.splits.test[0].label, 2);
  const first = layout.splits.train[0];
  assert.equal(first.audio, join(dir, "AudioWAV", "1001_DFA_ANG_XX.wav"));
  assert.equal(first.frames, join(dir, "Image-01-FPS", "1001_DFA_ANG_XX"));
  assert.equal(layout.splits.train[1].source, "train.csv line 2");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a malformed CREMA-D line", async () => {
  const dir = await folder({
    "train.csv": "a,ANG\nb;HAP\n",
    "test.csv": "c,SAD\n",
  });
  assert.throws(
    () => parseLayout("cremad", dir, CREMAD),
    (error: Error) => {
      assert.match(error.message, /train\.csv line 2: expected "clip,emotion"/);
      assert.match(error.message, /got "b;HAP"/);
      return true;
    },
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names an unknown CREMA-D emotion", async () => {
  const dir = await folder({ "train.csv": "a,ANG\n", "test.csv": "c,BORED\n" });
  assert.throws(
    () => parseLayout("cremad", dir, CREMAD),
    /test\.csv line 1: emotion "BORED" is not a CREMA-D class; expected one of NEU, HAP/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a missing split file", async () => {
  const dir = await folder({ "train.csv": "a,ANG\n" });
  assert.throws(
    () => parseLayout("cremad", dir, CREMAD),
    /Split file not found: .*test\.csv \(the test split of the cremad layout\)/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() numbers AVE categories by name", async () => {
  const dir = await folder({
    "trainSet.txt": "Category&VideoID&Quality&StartTime&EndTime\n" +
      "Church bell&vid1&good&0&10\nAcoustic guitar&vid2&good&2&8\n",
    "valSet.txt": "Banjo&vid3&good&0&10\n",
    "testSet.txt": "Church bell&vid4&bad&0&10\n",
  });
  const layout = parseLayout("ave", dir, AVE);
  assert.deepEqual(layout.classNames, [
    "Acoustic guitar",
    "Banjo",
    "Church bell",
  ]);
  assert.deepEqual(layout.splits.train.map((e) => e.id), ["vid1", "vid2"]);
  assert.deepEqual(layout.splits.train.map((e) => e.label), [2, 0]);
  assert.equal(layout.splits.val?.[0].label, 1);
  assert.equal(layout.splits.test[0].audio, join(dir, "Audio", "vid4.wav"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a malformed AVE line", async () => {
  const dir = await folder({
    "trainSet.txt": "Banjo&vid1&good&0&10\nBanjo&vid2&good&zero&10\n",
    "valSet.txt": "Banjo&vid3&good&0&10\n",
    "testSet.txt": "Banjo&vid4&good&0&10\n",
  });
  assert.throws(
    () => parseLayout("ave", dir, AVE),
    /trainSet\.txt line 2: expected "Category&VideoId&Quality&Start&End" \(5 fields\)/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names an AVE class outside the list", async () => {
  const dir = await folder({
    "classes.txt": "Banjo\nBus\n",
    "trainSet.txt": "Banjo&vid1&good&0&10\n",
    "valSet.txt": "Banjo&vid3&good&0&10\n",
    "testSet.txt": "Bus&vid4&good&0&10\nTrain horn&vid5&good&0&10\n",
  });
  assert.throws(
    () => parseLayout("ave", dir, { ...AVE, classList: "classes.txt" }),
    /testSet\.txt line 2: class "Train horn" is not in the class list \(2 classes: Banjo, Bus\)/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() reads Kinetics-Sounds index lines", async () => {
  const dir = await folder({
    "train.csv": "id1,0,10,3\nid2,5,15,0\n",
    "test.csv": "id3,0,10,1\n",
  });
  const layout = parseLayout("ks", dir, KS);
  assert.deepEqual(layout.classNames, ["0", "1", "2", "3"]);
  assert.deepEqual(layout.splits.train.map((e) => e.label), [3, 0]);
  assert.equal(layout.splits.val, undefined, "val.csv is optional");
  assert.equal(layout.splits.train[0].frames, join(dir, "visual", "id1"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() reads Kinetics-Sounds class lines", async () => {
  const dir = await folder({
    "train.csv": "playing drums,id1\nbowling,id2\n",
    "val.csv": "bowling,id4\n",
    "test.csv": "playing drums,id3\n",
  });
  const layout = parseLayout("ks", dir, KS);
  assert.deepEqual(layout.classNames, ["bowling", "playing drums"]);
  assert.deepEqual(layout.splits.train.map((e) => e.id), ["id1", "id2"]);
  assert.deepEqual(layout.splits.train.map((e) => e.label), [1, 0]);
  assert.equal(layout.splits.val?.length, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a Kinetics-Sounds line of another form", async () => {
  const dir = await folder({
    "train.csv": "id1,0,10,3\nid2,0,10,two\n",
    "test.csv": "id3,0,10,1\n",
  });
  assert.throws(
    () => parseLayout("ks", dir, KS),
    /train\.csv line 2: expected "<id>,...,<label index>" like line 1/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a Kinetics-Sounds index outside the list", async () => {
  const dir = await folder({
    "classes.txt": "bowling\nplaying drums\n",
    "train.csv": "id1,0,10,1\n",
    "test.csv": "id3,0,10,0\nid4,0,10,2\n",
  });
  assert.throws(
    () => parseLayout("ks", dir, { ...KS, classList: "classes.txt" }),
    /test\.csv line 2: label index 2 is outside the class list; expected 0 to 1 \(2 classes\)/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() reads a manifest", async () => {
  const dir = await folder({
    "manifest.csv": "split,label,audio,frames\n" +
      'train,dog,a/1.wav,"f/1, first"\n' +
      "val,cat,a/2.wav,f/2\n" +
      "test,dog,/abs/3.wav,f/3.jpg\n",
  });
  const layout = parseLayout("manifest", join(dir, "manifest.csv"), MANIFEST);
  assert.deepEqual(layout.classNames, ["cat", "dog"]);
  assert.equal(layout.splits.train[0].label, 1);
  assert.equal(layout.splits.train[0].audio, join(dir, "a/1.wav"));
  assert.equal(layout.splits.train[0].frames, join(dir, "f/1, first"));
  assert.equal(layout.splits.val?.[0].label, 0);
  assert.equal(layout.splits.test[0].audio, "/abs/3.wav");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a manifest without its header", async () => {
  const dir = await folder({ "manifest.csv": "split,label,audio\n" });
  assert.throws(
    () => parseLayout("manifest", join(dir, "manifest.csv"), MANIFEST),
    /manifest\.csv line 1: expected a header with the columns split,label,audio,frames \(missing: frames\)/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a malformed manifest row", async () => {
  const dir = await folder({
    "manifest.csv": "split,label,audio,frames\ntrain,dog,a.wav,f\n" +
      "training,dog,b.wav,g\n",
  });
  assert.throws(
    () => parseLayout("manifest", join(dir, "manifest.csv"), MANIFEST),
    /manifest\.csv line 3: expected split "train", "val" or "test", got "training,dog,b\.wav,g"/,
  );
  await Deno.writeTextFile(
    join(dir, "manifest.csv"),
    "split,label,audio,frames\ntrain,dog,a.wav\n",
  );
  assert.throws(
    () => parseLayout("manifest", join(dir, "manifest.csv"), MANIFEST),
    /manifest\.csv line 2: expected 4 comma-separated fields/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseLayout() names a manifest label outside the list", async () => {
  const dir = await folder({
    "classes.txt": "cat\ndog\n",
    "manifest.csv": "split,label,audio,frames\ntrain,dog,a.wav,f\n" +
      "test,cow,b.wav,g\n",
  });
  assert.throws(
    () =>
      parseLayout("manifest", join(dir, "manifest.csv"), {
        ...MANIFEST,
        classList: "classes.txt",
      }),
    /manifest\.csv line 3: class "cow" is not in the class list/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("splitCsvLine() handles quotes", () => {
  assert.deepEqual(splitCsvLine('a,"b,c",d'), ["a", "b,c", "d"]);
  assert.deepEqual(splitCsvLine('"say ""hi""",x'), ['say "hi"', "x"]);
  assert.deepEqual(splitCsvLine("a,,b"), ["a", "", "b"]);
  assert.equal(splitCsvLine('a,"open'), undefined);
});

Deno.test("DISK_DATASET_KINDS lists every parser", () => {
  const kinds: readonly DiskDatasetKind[] = DISK_DATASET_KINDS;
  assert.deepEqual([...kinds], ["cremad", "ave", "ks", "manifest"]);
});
