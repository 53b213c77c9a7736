/** Returns Deno permission flags for a toolkit script run with `args`. */
export function permissionFlags(
  name: string,
  args: string[],
  root: string,
  temporary: string,
): string[] | undefined;
