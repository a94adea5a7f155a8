"""Source positions: a file's text and the spans (line, column ranges) of its pieces."""
from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A range of source text: 1-based lines and columns, end column exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


NO_SPAN = Span(0, 0, 0, 0)


@dataclass(frozen=True)
class Source:
    """A named source text (a `.ppl` file, or a string given to `pplc.compile`)."""

    text: str
    filename: str = "<string>"

    @functools.cached_property
    def lines(self) -> list[str]:
        """The lines as the parser counts them: split at '\\n' only (a '\\r' before it dropped)."""
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]

    def line(self, n: int) -> str:
        lines = self.lines
        return lines[n - 1] if 1 <= n <= len(lines) else ""
