#!/usr/bin/python3
"""Execute a notebook headless in the Deno Jupyter kernel and save its outputs.

Usage: /usr/bin/python3 scripts/run_notebook.py NOTEBOOK [--output PATH]
           [--timeout SECONDS] [--grace SECONDS] [--deno PATH]

The kernel is node_modules/deno/deno from this repository, registered
through a temporary kernelspec on JUPYTER_PATH, so nothing is installed in
the user's Jupyter folders. It starts in the notebook's folder, so a cell's
`import ... from "../lib/mod.ts"` resolves against the repository, and it
runs with every Deno permission (the kernel grants all of them).

Why not nbclient or nbconvert: the Deno kernel (2.x) sometimes publishes a
display message after it has reported the cell idle, and those clients stop
reading at idle, so the message is lost. This runner keeps reading the
IOPub channel after idle until it has been quiet for --grace seconds, and
files each late message under the cell whose request is its parent.

Exit status 0 when every code cell ran without an error and produced at
least one output; cells tagged "allow-empty-output" may stay silent. Exit
status 1 otherwise; the executed notebook is written in both cases, so the
failing cell's outputs can be read. Exit status 2 on invalid arguments.

Needs Debian's python3-jupyter-client and python3-nbformat, and runs under
/usr/bin/python3, where Debian's Python packages import.
"""

import argparse
import json
import os
import queue
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager

KERNEL_NAME = "camdrop-deno"
EMPTY_TAG = "allow-empty-output"
REPOSITORY = Path(__file__).resolve().parent.parent


class NotebookError(Exception):
    """A cell failed, timed out or produced no output."""


def write_kernelspec(folder: Path, deno: Path) -> None:
    """Write a kernelspec that starts `deno jupyter --kernel` under folder."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(deno), "jupyter", "--kernel", "--conn",
                 "{connection_file}"],
        "display_name": "Deno (camdrop toolkit)",
        "language": "typescript",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2))


class CellOutputs:
    """Collects the IOPub messages of one cell as nbformat outputs."""

    def __init__(self, cell):
        self.cell = cell
        self.cell.outputs = []
        self.error = None

    def add(self, message, displays):
        kind = message["msg_type"]
        content = message["content"]
        outputs = self.cell.outputs
        if kind == "stream":
            # Join consecutive chunks of one stream, as Jupyter does.
            if outputs and outputs[-1].get("output_type") == "stream" \
                    and outputs[-1]["name"] == content["name"]:
                outputs[-1]["text"] += content["text"]
            else:
                outputs.append(nbformat.v4.new_output(
                    "stream", name=content["name"], text=content["text"]))
        elif kind in ("display_data", "execute_result"):
            fields = {"data": content["data"],
                      "metadata": content.get("metadata", {})}
            if kind == "execute_result":
                fields["execution_count"] = content.get("execution_count")
            output = nbformat.v4.new_output(kind, **fields)
            outputs.append(output)
            display_id = content.get("transient", {}).get("display_id")
            if display_id:
                displays.setdefault(display_id, []).append(output)
        elif kind == "update_display_data":
            # Replace every earlier output shown under this display id.
            display_id = content.get("transient", {}).get("display_id")
            for output in displays.get(display_id, []):
                output["data"] = content["data"]
                output["metadata"] = content.get("metadata", {})
        elif kind == "clear_output":
            outputs.clear()
        elif kind == "error":
            outputs.append(nbformat.v4.new_output(
                "error", ename=content["ename"], evalue=content["evalue"],
                traceback=content["traceback"]))
            self.error = f'{content["ename"]}: {content["evalue"]}'


def drain(client, cells_by_request, displays, until_idle, timeout, grace):
    """Read IOPub and file each message under the cell that requested it.

    With until_idle, reads until the kernel reports that request idle (or
    raises NotebookError after timeout seconds), then continues until the
    channel has been quiet for grace seconds.
    """
    deadline = time.monotonic() + timeout
    idle = until_idle is None
    quiet_since = time.monotonic()
    while True:
        now = time.monotonic()
        if idle and now - quiet_since >= grace:
            return
        if not idle and now >= deadline:
            raise NotebookError(f"timed out after {timeout} s")
        wait = grace - (now - quiet_since) if idle else deadline - now
        try:
            message = client.get_iopub_msg(timeout=max(wait, 0.01))
        except queue.Empty:
            continue
        quiet_since = time.monotonic()
        parent = message["parent_header"].get("msg_id")
        kind = message["msg_type"]
        if kind == "status":
            if parent == until_idle and \
                    message["content"]["execution_state"] == "idle":
                idle = True
            continue
        collector = cells_by_request.get(parent)
        if collector is not None and kind != "execute_input":
            collector.add(message, displays)


def run_notebook(path: Path, output: Path, deno: Path, timeout: float,
                 grace: float) -> list:
    """Execute every code cell; return a list of problems (empty = passed)."""
    notebook = nbformat.read(path, as_version=4)
    problems = []
    with tempfile.TemporaryDirectory(prefix="camdrop-kernel-") as folder:
        write_kernelspec(Path(folder), deno)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [folder, os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep)
        manager = KernelManager(kernel_name=KERNEL_NAME)
        manager.start_kernel(cwd=str(path.resolve().parent))
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            cells_by_request = {}
            displays = {}
            count = 0
            code_cells = [c for c in notebook.cells if c.cell_type == "code"]
            for number, cell in enumerate(code_cells, start=1):
                started = time.monotonic()
                collector = CellOutputs(cell)
                request = client.execute(cell.source, allow_stdin=False)
                cells_by_request[request] = collector
                count += 1
                cell.execution_count = count
                try:
                    drain(client, cells_by_request, displays, request,
                          timeout, grace)
                except NotebookError as error:
                    problems.append(f"cell {number}: {error}")
                    break
                reply = client.get_shell_msg(timeout=timeout)
                status = reply["content"].get("status")
                seconds = time.monotonic() - started
                print(f"cell {number}/{len(code_cells)}: {status}, "
                      f"{len(cell.outputs)} outputs, {seconds:.1f} s",
                      file=sys.stderr)
                if collector.error is not None or status != "ok":
                    problems.append(
                        f"cell {number}: {collector.error or status}")
                    break
            # Late messages of earlier cells still land where they belong.
            drain(client, cells_by_request, displays, None, timeout, grace)
            for number, cell in enumerate(code_cells, start=1):
                tags = cell.get("metadata", {}).get("tags", [])
                ran = cell.execution_count is not None
                if ran and not cell.outputs and EMPTY_TAG not in tags:
                    problems.append(
                        f"cell {number}: produced no output (tag it "
                        f'"{EMPTY_TAG}" if that is expected)')
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    notebook.metadata["kernelspec"] = {
        "name": "deno", "display_name": "Deno", "language": "typescript"}
    notebook.metadata["language_info"] = {
        "name": "typescript", "file_extension": ".ts",
        "mimetype": "text/x.typescript"}
    nbformat.write(notebook, str(output))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Execute a notebook in the Deno Jupyter kernel and "
        "write it with its outputs.")
    parser.add_argument("notebook", type=Path, help="notebook to execute")
    parser.add_argument(
        "--output", type=Path,
        help="where to write the executed notebook (default: in place)")
    parser.add_argument(
        "--timeout", type=float, default=900,
        help="seconds one cell may run before the run fails (default 900)")
    parser.add_argument(
        "--grace", type=float, default=1.0,
        help="seconds without IOPub messages after a cell reports idle "
        "before the next cell starts (default 1.0)")
    parser.add_argument(
        "--deno", type=Path, default=REPOSITORY / "node_modules/deno/deno",
        help="Deno executable (default: node_modules/deno/deno)")
    args = parser.parse_args()
    if not args.notebook.is_file():
        parser.error(f"notebook {args.notebook} not found")
    if not args.deno.is_file():
        parser.error(f"Deno executable {args.deno} not found; run npm ci")
    if args.grace < 0 or args.timeout <= 0:
        parser.error("--grace must be >= 0 and --timeout > 0")
    output = args.output or args.notebook
    problems = run_notebook(args.notebook, output, args.deno.resolve(),
                            args.timeout, args.grace)
    for problem in problems:
        print(f"error: {args.notebook}: {problem}", file=sys.stderr)
    print(f"wrote {output}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
