// Permission flags of each toolkit script, worked out from its command
// line. Kept apart from the launcher so that tests can check them.
import { statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/**
 * Returns Deno permission flags for script `name` run with `args`, or
 * undefined for an unknown script.
 */
export function permissionFlags(name, args, root, temporary) {
  /** Returns the value of `--flag VALUE` or `--flag=VALUE`, if present. */
  function option(flag) {
    for (let i = 0; i < args.length; i++) {
      if (args[i] === flag) return args[i + 1];
      if (args[i].startsWith(`${flag}=`)) return args[i].slice(flag.length + 1);
    }
    return undefined;
  }
  const paths = (...list) =>
    list.filter((p) => p !== undefined).map((p) => resolve(p)).join(",");
  const env = "--allow-env";
  // Training calls OpenBLAS through FFI for the wasm convolutions
  // (lib/backend/blas_kernels.ts) and falls back to the plain kernels
  // without this permission. It cannot be scoped to the library's path,
  // because Deno 2.9's pointer functions need the unscoped permission, and
  // native code runs outside Deno's sandbox anyway.
  const ffi = "--allow-ffi";
  switch (name) {
    case "repro": {
      const out = option("--out") ?? "runs";
      const figures = option("--figures") ?? "figures";
      const resumeDir = option("--resume");
      const resumeParent = resumeDir === undefined
        ? undefined
        : dirname(resolve(resumeDir));
      // A manifest CSV as data root names media relative to its folder.
      let dataRoot = option("--data-root");
      if (dataRoot !== undefined && isFile(dataRoot)) {
        dataRoot = dirname(resolve(dataRoot));
      }
      // The preprocessing cache of on-disk datasets is read and written.
      const cacheOption = option("--cache-dir");
      const cache = cacheOption === "none"
        ? undefined
        : cacheOption ?? join(root, ".cache", "data");
      // --all exports figures through Chromium, with a fresh profile in
      // the temporary folder.
      const all = args.includes("--all");
      const chromium = all ? "/usr/bin/chromium" : undefined;
      const profile = all ? temporary : undefined;
      return [
        `--allow-read=${
          paths(
            root,
            out,
            figures,
            dataRoot,
            option("--config"),
            resumeDir,
            cache,
            chromium,
            profile,
          )
        }`,
        `--allow-write=${paths(out, figures, resumeParent, cache, profile)}`,
        ...(all ? [`--allow-run=${chromium}`] : []),
        env,
        ffi,
      ];
    }
    case "eval": {
      // The run folder is the one argument that is neither an option nor
      // the value of --backend.
      const runDir = args.find((a, i) =>
        !a.startsWith("--") && args[i - 1] !== "--backend"
      );
      return [`--allow-read=${paths(root, runDir)}`, env, ffi];
    }
    case "bench":
      // The benchmark runs PyTorch and numpy as references and installs
      // them with apt when missing. It writes its record to --output.
      return [
        "--allow-read",
        `--allow-write=${
          paths(join(root, "docs"), temporary, option("--output"))
        }`,
        "--allow-run",
        "--allow-sys",
        env,
      ];
    case "prepare": {
      // ffmpeg and ffprobe convert the videos; only --out is written.
      const out = option("--out");
      return [
        `--allow-read=${
          paths(root, option("--videos"), option("--labels"), out)
        }`,
        ...(out === undefined ? [] : [`--allow-write=${paths(out)}`]),
        "--allow-run=ffmpeg,ffprobe",
        env,
      ];
    }
    case "cache_clear": {
      const cache = option("--cache-dir") ?? join(root, ".cache", "data");
      return [
        `--allow-read=${paths(root, cache)}`,
        `--allow-write=${paths(cache)}`,
        env,
      ];
    }
    case "run_tests":
      // The test runner starts `deno test` with its own scoped flags. It is
      // not called test.ts, which `deno test` would load as a test module.
      return ["--allow-read", "--allow-run", env];
    default:
      return undefined;
  }
}

function isFile(path) {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
