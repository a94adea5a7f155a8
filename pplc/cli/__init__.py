"""The `pplc` command line (above the API): `main` parses the arguments, runs the command, reports errors."""
from __future__ import annotations

import sys

from ..dsl.diagnostics import PPLError
from .commands import run_command
from .errors import report
from .options import parser


def main(argv=None) -> int:
    """Entry point of the `pplc` script and of `python -m pplc`; returns (as a script, exits with) the status."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (1)
        return e.code if isinstance(e.code, int) else 1
    try:
        return run_command(args)
    except PPLError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the last line of defence: no traceback for users
        text, code = report(e, args.debug)
        print(text, file=sys.stderr)
        return code


__all__ = ["main"]
