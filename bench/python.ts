/**
 * Debian's Python with PyTorch and NumPy, used only as the benchmark's
 * reference: it checks what imports under /usr/bin/python3 and installs the
 * missing Debian packages with apt-get when allowed.
 *
 * Debian's python3-torch (1.13) and python3-numpy import only under
 * /usr/bin/python3, so another `python3` earlier on the PATH is not used.
 *
 * @module
 */

/** The interpreter that Debian's python3-* packages install into. */
export const PYTHON = "/usr/bin/python3";

/** Debian packages the reference needs. */
export const DEBIAN_PACKAGES = [
  "python3-torch",
  "python3-numpy",
  "python3-threadpoolctl",
  // Without it, libblas.so.3 is the slow reference BLAS, for NumPy and for
  // the matrix products inside PyTorch alike.
  "libopenblas0",
] as const;

/** Versions of the Python modules that import, or why they do not. */
export interface PythonModules {
  /** Python version, or undefined when /usr/bin/python3 did not run. */
  python?: string;
  /** torch.__version__, when torch imports. */
  torch?: string;
  /** numpy.__version__, when numpy imports. */
  numpy?: string;
  /** threadpoolctl.__version__, when it imports. */
  threadpoolctl?: string;
  /** BLAS behind NumPy as threadpoolctl names it, such as "openblas". */
  blas?: string;
  /** Reason a module is missing, when one is. */
  problem?: string;
}

const PROBE = `
import json, platform
found = {"python": platform.python_version()}
missing = []
for name in ("torch", "numpy", "threadpoolctl"):
    try:
        found[name] = __import__(name).__version__
    except Exception as error:
        missing.append(f"{name}: {type(error).__name__}: {error}")
if "numpy" in found and "threadpoolctl" in found:
    from threadpoolctl import threadpool_info
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            found["blas"] = pool.get("internal_api")
if found.get("blas") != "openblas":
    missing.append("numpy does not use OpenBLAS")
if missing:
    found["problem"] = "; ".join(missing)
print(json.dumps(found))
`;

/** Runs a command and returns its exit code and output text. */
export async function runCommand(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const output = await new Deno.Command(command, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } catch (error) {
    // Deno.Command throws when the program does not exist.
    return { code: -1, stdout: "", stderr: String(error) };
  }
}

/** Checks which reference modules import under {@linkcode PYTHON}. */
export async function probePython(): Promise<PythonModules> {
  const result = await runCommand(PYTHON, ["-c", PROBE]);
  if (result.code !== 0) {
    return {
      problem: `${PYTHON} failed (exit ${result.code}): ` +
        lastLine(result.stderr),
    };
  }
  try {
    return JSON.parse(result.stdout) as PythonModules;
  } catch {
    return { problem: `${PYTHON} printed no JSON: ${lastLine(result.stdout)}` };
  }
}

/** Options of {@linkcode ensurePython}. */
export interface EnsurePythonOptions {
  /** Run apt-get install when torch or numpy is missing. */
  install: boolean;
  /** Receives progress messages. */
  log: (message: string) => void;
}

/**
 * Returns the reference modules, installing Debian's packages with apt-get
 * when torch, numpy or OpenBLAS is missing and `install` is set. Runs
 * `apt-get update` only when the first install attempt fails. A failure is
 * reported in `problem`, not thrown.
 */
export async function ensurePython(
  options: EnsurePythonOptions,
): Promise<PythonModules> {
  const found = await probePython();
  if (found.problem === undefined || !options.install) return found;

  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const install = [
    "install",
    "-y",
    "--no-install-recommends",
    ...DEBIAN_PACKAGES,
  ];
  options.log(`installing ${DEBIAN_PACKAGES.join(", ")} with apt-get`);
  let result = await runCommand("apt-get", install, env);
  if (result.code !== 0) {
    options.log("apt-get install failed; running apt-get update and retrying");
    await runCommand("apt-get", ["update"], env);
    result = await runCommand("apt-get", install, env);
  }
  const after = await probePython();
  if (result.code !== 0) {
    const reason = `apt-get install failed (exit ${result.code}): ` +
      lastLine(result.stderr);
    after.problem = after.problem === undefined
      ? reason
      : `${after.problem}; ${reason}`;
  }
  return after;
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}
