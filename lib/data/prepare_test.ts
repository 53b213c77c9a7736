import assert from "node:assert/strict";
import { join } from "node:path";
import { prepareVideos, readLabelList } from "./prepare.ts";

async function labels(text: string): Promise<{ dir: string; path: string }> {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-labels-" });
  const path = join(dir, "labels.csv");
  await Deno.writeTextFile(path, text);
  return { dir, path };
}

Deno.test("readLabelList() reads rows and skips a header", async () => {
  const { dir, path } = await labels(
    "video,label,split\nclip1.mp4,dog,train\r\n\nclip2,cat,test\nclip3.mkv,cat\n",
  );
  const rows = readLabelList(path);
  assert.deepEqual(rows.map((row) => row.id), ["clip1", "clip2", "clip3"]);
  assert.deepEqual(rows.map((row) => row.split), ["train", "test", undefined]);
  assert.equal(rows[2].video, "clip3.mkv");
  assert.equal(rows[2].line, 5);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readLabelList() names a malformed line", async () => {
  const { dir, path } = await labels("a.mp4,dog\nb.mp4\n");
  assert.throws(
    () => readLabelList(path),
    /labels\.csv line 2: expected "video,label" or "video,label,split"/,
  );
  await Deno.writeTextFile(path, "a.mp4,dog,holdout\n");
  assert.throws(
    () => readLabelList(path),
    /labels\.csv line 1: .*with split train, val or test, got "a\.mp4,dog,holdout"/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readLabelList() rejects a repeated video", async () => {
  const { dir, path } = await labels("a.mp4,dog\nb.mp4,cat\na.mkv,cat\n");
  assert.throws(
    () => readLabelList(path),
    /labels\.csv line 3: video "a" is already listed on line 1/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("prepareVideos() checks CREMA-D labels first", async () => {
  const { dir, path } = await labels("a.mp4,HAP\nb.mp4,happy\n");
  await assert.rejects(
    () =>
      prepareVideos({
        videoDir: dir,
        labelsFile: path,
        outDir: join(dir, "out"),
        layout: "cremad",
      }),
    /line 2: label "happy" is not a CREMA-D emotion code; expected one of NEU/,
  );
  await Deno.writeTextFile(path, "a.mp4,HAP,val\n");
  await assert.rejects(
    () =>
      prepareVideos({
        videoDir: dir,
        labelsFile: path,
        outDir: join(dir, "out"),
        layout: "cremad",
      }),
    /line 1: the CREMA-D layout has no val split file/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("prepareVideos() rejects bad options", async () => {
  const { dir, path } = await labels("a.mp4,dog\n");
  const base = { videoDir: dir, labelsFile: path, outDir: join(dir, "o") };
  await assert.rejects(
    () => prepareVideos({ ...base, jobs: 0 }),
    /jobs must be >= 1, got 0/,
  );
  await assert.rejects(
    () => prepareVideos({ ...base, layout: "ave" as never }),
    /layout must be cremad or manifest, got "ave"/,
  );
  await assert.rejects(
    () => prepareVideos({ ...base, videoDir: join(dir, "absent") }),
    /Video folder not found: .*absent/,
  );
  await Deno.remove(dir, { recursive: true });
});
