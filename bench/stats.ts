/**
 * Small helpers shared by the benchmark's parts.
 *
 * @module
 */

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) {
    throw new Error("median: the list of values is empty.");
  }
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Reads this process's high-water resident set size (VmHWM) from
 * /proc/self/status, in bytes. Returns undefined where that file does not
 * exist (any OS but Linux) or cannot be read: Deno 2 lets only --allow-all
 * read /proc/self.
 */
export async function peakRssBytes(): Promise<number | undefined> {
  let status: string;
  try {
    status = await Deno.readTextFile("/proc/self/status");
  } catch (error) {
    const unreadable = error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotCapable;
    if (unreadable) return undefined;
    throw error;
  }
  const match = status.match(/^VmHWM:\s+(\d+)\s+kB$/m);
  return match === null ? undefined : Number(match[1]) * 1024;
}
