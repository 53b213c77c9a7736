/**
 * Opening native libraries through `Deno.dlopen`, shared by the OpenBLAS
 * and oneDNN loaders. Failures come back as one-line reasons, so that
 * callers can fall back to the plain kernels.
 *
 * @module
 */

/** Returns the first line of an error's message. */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}

/**
 * Returns why this process cannot call native libraries, or undefined
 * when it can. The FFI permission is queried, so Deno never prompts.
 */
export function ffiProblem(): string | undefined {
  if (typeof Deno?.dlopen !== "function") {
    return "Deno.dlopen is not available in this runtime";
  }
  // Pointer functions such as Deno.UnsafePointer.of need the unscoped
  // permission (Deno 2.9), so a path-scoped --allow-ffi is not enough.
  const permission = Deno.permissions.querySync({ name: "ffi" });
  if (permission.state !== "granted") {
    return "the FFI permission is missing (run Deno with --allow-ffi)";
  }
  return undefined;
}

/**
 * Opens the first of `libraries` that loads with `symbols` and that
 * `wrap` accepts, or returns the value cached for a library opened
 * before. The cache lives as long as the isolate; `wrap` may pin the
 * library for longer with {@linkcode keepLoaded}.
 *
 * @param libraries Names or paths for `Deno.dlopen`, tried in order.
 * @param symbols The symbols to bind.
 * @param opened Values of libraries opened before, by name; updated.
 * @param wrap Builds the value from an opened library; may throw.
 * @returns The value, or why each library failed.
 */
export function openFirst<S extends Deno.ForeignLibraryInterface, T>(
  libraries: readonly string[],
  symbols: S,
  opened: Map<string, T>,
  wrap: (library: string, handle: Deno.DynamicLibrary<S>) => T,
): { value: T } | { failures: string[] } {
  const failures: string[] = [];
  for (const library of libraries) {
    const cached = opened.get(library);
    if (cached !== undefined) return { value: cached };
    let value: T;
    try {
      value = wrap(library, Deno.dlopen(library, symbols));
    } catch (error) {
      failures.push(`${library}: ${firstLine(error)}`);
      continue;
    }
    opened.set(library, value);
    return { value };
  }
  return { failures };
}

/** glibc's loader, to keep a library mapped for the life of the process. */
const LIBC = "libc.so.6";
const LIBC_SYMBOLS = {
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
} as const;
// dlfcn.h of glibc.
const RTLD_NOW = 2;
const RTLD_NODELETE = 0x1000;

/**
 * Opens `library` once more with RTLD_NODELETE, so that it stays mapped
 * after every `Deno.dlopen` handle to it is closed. Deno closes an
 * isolate's handles when the isolate ends, and each test module under
 * `deno test` runs in an isolate of its own. A library with threads of its
 * own must not be unloaded while they live: libdnnl and libgomp were
 * unloaded at a module's end (LD_DEBUG=files showed it) and the process
 * crashed in libgomp's threads. libdnnl is undeletable by itself unless
 * libLLVM (loaded by Mesa's Vulkan driver) came first.
 *
 * @returns Whether the library is now pinned.
 */
export function keepLoaded(library: string): boolean {
  let libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  try {
    libc = Deno.dlopen(LIBC, LIBC_SYMBOLS);
  } catch {
    return false;
  }
  try {
    const name = new TextEncoder().encode(`${library}\0`);
    return libc.symbols.dlopen(name, RTLD_NOW | RTLD_NODELETE) !== null;
  } finally {
    libc.close();
  }
}
