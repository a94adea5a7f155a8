"""Progress of a sampling run: a rich bar on a terminal, plain periodic lines elsewhere; process 0 only."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..devices.mesh import is_main_process

PLAIN_LINES = 10  # a plain line each time another tenth of the run is done ...
PLAIN_EVERY_S = 60.0  # ... or when this long has passed since the last one


def terminal_width(stream) -> int | None:
    """The width of the terminal `stream` writes to: $COLUMNS, else the first of the stream's own, stderr's,
    stdout's and stdin's terminals that reports a width (a pseudo-terminal may report 0: skipped); None when
    there is none (rich then uses 80)."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    fds = []
    try:
        fds.append(stream.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    for fd in fds + [2, 1, 0]:
        try:
            width = os.get_terminal_size(fd).columns
        except (OSError, ValueError):
            continue
        if width > 0:
            return width
    return None


def _fmt_duration(s: float) -> str:
    if not np.isfinite(s):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """What a sampling run reports as it goes: phase, iteration, leapfrog steps per second, divergences,
    step size and ETA; the compilation apart. `update` is called by the host loop after every block.

    On a terminal (or with `force_terminal=True`) a rich progress bar, one per run; on anything else a
    plain line each tenth of the run (and at least every minute). Only JAX process 0 prints."""

    def __init__(self, warmup: int, draws: int, stream=None, enabled: bool = True, force_terminal=None):
        self.warmup, self.draws = int(warmup), int(draws)
        self.total = self.warmup + self.draws
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(enabled) and is_main_process()
        self._bar = None
        self._task = None
        self._console = None
        self._divergent = {"warmup": 0, "sampling": 0}
        self._leapfrogs = 0.0
        self._t_start = None
        self._start_it = 0
        self._last_line_t = 0.0
        self._last_line_tenth = -1
        self._last = {}
        if not self.enabled:
            return
        from rich.console import Console

        self._console = Console(file=self.stream, force_terminal=force_terminal, highlight=False,
                                width=terminal_width(self.stream))
        self.terminal = self._console.is_terminal

    # ------------------------------------------------------------------ lines
    def message(self, text: str) -> None:
        """A line above the bar (or a plain line)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def compiled(self, seconds: float, what: str = "start-up and compilation") -> None:
        """Report the compilation (and start-up) time, kept apart from the sampling rate."""
        self.message(f"{what}: {seconds:.1f} s")

    # ------------------------------------------------------------------ the run
    def start(self, iteration: int = 0, divergent: dict | None = None) -> None:
        """The sampling loop starts at `iteration` (after a resume, not 0)."""
        self._t_start = time.perf_counter()
        self._start_it = iteration
        if divergent:
            self._divergent.update(divergent)
        if not self.enabled:
            return
        if self.terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = RichProgress(
                TextColumn("{task.fields[phase]:<8}"), BarColumn(bar_width=max(10, min(40, self._console.width - 100))),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[div]}"), TextColumn("{task.fields[step]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self._console, refresh_per_second=4, transient=False)
            self._bar.start()
            self._task = self._bar.add_task("sampling", total=self.total, completed=iteration,
                                            **self._fields(self._phase(iteration), iteration))
        else:
            self._last_line_t = time.perf_counter()
            self._last_line_tenth = self._tenth(iteration)

    def _tenth(self, iteration: int) -> int:
        return iteration * PLAIN_LINES // max(self.total, 1)

    def _phase(self, iteration: int) -> str:
        return "warmup" if iteration < self.warmup else "sampling"

    def update(self, iteration: int, phase: str, stats: dict | None = None) -> None:
        """After a block of `phase`: `iteration` iterations (warmup included) are done; `stats` are the block's
        per-iteration statistics ({name: [iterations, chains]})."""
        if stats:
            if "diverging" in stats:
                self._divergent[phase] += int(np.sum(np.asarray(stats["diverging"])))
            if "n_leapfrog" in stats:
                self._leapfrogs += float(np.sum(np.mean(np.asarray(stats["n_leapfrog"], float), axis=-1)))
            if "step_size" in stats and np.size(stats["step_size"]):
                self._last["step_size"] = float(np.mean(np.asarray(stats["step_size"])[-1]))
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=iteration, **self._fields(phase, iteration))
            return
        now = time.perf_counter()
        tenth = self._tenth(iteration)
        end_of_warmup = phase == "warmup" and iteration == self.warmup
        if (tenth > self._last_line_tenth or now - self._last_line_t >= PLAIN_EVERY_S or iteration >= self.total
                or end_of_warmup):
            self._last_line_tenth, self._last_line_t = tenth, now
            print(self.line(iteration, phase), file=self.stream, flush=True)

    def rate(self) -> float:
        """Leapfrog steps (gradient evaluations) per second per chain since `start`."""
        el = time.perf_counter() - self._t_start if self._t_start else 0.0
        return self._leapfrogs / el if el > 0 else float("nan")

    def eta(self, iteration: int) -> float:
        el = time.perf_counter() - self._t_start if self._t_start else 0.0
        done = iteration - self._start_it
        return el / done * (self.total - iteration) if done > 0 else float("nan")

    def _fields(self, phase: str, iteration: int) -> dict:
        rate = self.rate()
        step = self._last.get("step_size")
        return {"phase": phase,
                "rate": f"{rate:,.0f} leapfrog/s" if np.isfinite(rate) else "",
                "div": f"{self._divergent[phase]} divergent" if phase in self._divergent else "",
                "step": f"step {step:.3g}" if step is not None else ""}

    def line(self, iteration: int, phase: str) -> str:
        """The plain progress line (non-terminals)."""
        f = self._fields(phase, iteration)
        pct = 100.0 * iteration / max(self.total, 1)
        parts = [f"{phase} {iteration}/{self.total} ({pct:.0f}%)", f["rate"], f["div"], f["step"],
                 f"ETA {_fmt_duration(self.eta(iteration))}" if iteration < self.total else "done"]
        return "  ".join(p for p in parts if p)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
