"""How the command line reports what went wrong: user errors, out of memory, and internal errors (exit 1 or 3)."""
from __future__ import annotations

import re
import traceback

from ..dsl.diagnostics import Diagnostic, PPLError

ISSUES_URL = "the pplc issue tracker"


def out_of_memory(e: BaseException) -> PPLError | None:
    """XLA's RESOURCE_EXHAUSTED (jaxlib's XlaRuntimeError / JaxRuntimeError) as a user-facing error."""
    if type(e).__name__ not in ("XlaRuntimeError", "JaxRuntimeError") or "RESOURCE_EXHAUSTED" not in str(e):
        return None
    text = str(e)
    m = re.search(r"allocate (\d+) bytes", text)
    what = "the device ran out of memory"
    if m:
        what = f"the device ran out of memory allocating {_bytes(int(m.group(1)))}"
    else:
        m = re.search(r"Used ([\d.]+\w?) of ([\d.]+\w?)", text)
        if m:
            what = f"the device ran out of memory: the program needs {m.group(1)} of {m.group(2)}"
    first = next((ln.strip() for ln in text.splitlines() if "RESOURCE_EXHAUSTED" in ln), text.splitlines()[0])
    return PPLError(Diagnostic(
        f"out of memory: {what} (for the sampler's state, the draws kept on the device, or the data)",
        notes=(f"XLA: {first[:300]}",),
        hint="use fewer chains (--chains), keep fewer draws on the device at a time (--block), split the data "
             "over more devices (--devices), or use a smaller data set"))


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def report(e: Exception, debug: bool) -> tuple[str, int]:
    """What to print for an exception that is not a PPLError, and the exit status: out of memory is the
    user's (1); anything else is a bug in pplc (3), with a traceback printed first under --debug."""
    if debug:
        traceback.print_exc()
    oom = out_of_memory(e)
    if oom is not None:
        return oom.render(), 1
    lines = str(e).strip().splitlines()
    summary = f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__
    return (f"pplc: internal error: {summary}\n  this is a bug in pplc, not in your model; please report it to "
            f"{ISSUES_URL} with the model, the data shapes and the command line"
            + ("" if debug else " (rerun with --debug to print the traceback)")), 3
