"""Generated modules formatted by black, once per source text."""
from __future__ import annotations

import functools

LINE_LENGTH = 100


@functools.lru_cache(maxsize=256)
def format_module(source: str) -> str:
    """`source` as black writes it (lines of at most LINE_LENGTH where black can break them; comments stay as
    written). Cached by text: black takes about 0.1 s a module, and tests compile the same models many times."""
    import black  # imported on first use: it takes a while, and only compiling needs it

    return black.format_str(source, mode=black.Mode(line_length=LINE_LENGTH))
