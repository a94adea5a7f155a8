"""The one Diagnostic type for every user-facing error, and how it is rendered."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from .spans import NO_SPAN, Source, Span


@dataclass(frozen=True)
class Diagnostic:
    """A message for the user: what is wrong, where, and what would be right."""

    message: str
    span: Span = NO_SPAN
    severity: str = "error"  # "error" | "warning"
    notes: tuple[str, ...] = ()
    hint: str | None = None
    filename: str | None = None  # for diagnostics about files other than the model (data)

    def render(self, source: Source | None) -> str:
        name = self.filename or (source.filename if source else "pplc")
        if self.span == NO_SPAN or source is None or self.filename:
            head = f"{name}: {self.severity}: {self.message}"
            lines = [head]
        else:
            head = f"{name}:{self.span.line}:{self.span.col}: {self.severity}: {self.message}"
            text = source.line(self.span.line)
            end = self.span.end_col if self.span.end_line == self.span.line else len(text) + 1
            width = max(1, end - self.span.col)
            # The caret line copies the tabs of the source line so that it lines up in any terminal.
            pad = "".join("\t" if ch == "\t" else " " for ch in text[:self.span.col - 1])
            pad += " " * max(0, self.span.col - 1 - len(text))
            lines = [head, "  " + text, "  " + pad + "^" * width]
        lines += [f"  note: {n}" for n in self.notes]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class PPLError(Exception):
    """One or more user-facing diagnostics (errors, maybe with warnings before them)."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic, source: Source | None = None):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render(self.source) for d in self.diagnostics)


@dataclass
class DiagnosticSink:
    """Collects diagnostics during a phase; raises them all at once."""

    source: Source
    items: list[Diagnostic] = field(default_factory=list)

    def error(self, message: str, span: Span = NO_SPAN, *, notes=(), hint=None) -> None:
        self.items.append(Diagnostic(message, span, "error", tuple(notes), hint))

    def warning(self, message: str, span: Span = NO_SPAN, *, notes=(), hint=None) -> None:
        self.items.append(Diagnostic(message, span, "warning", tuple(notes), hint))

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise PPLError(self.sorted(), self.source)

    def sorted(self) -> list[Diagnostic]:
        """In source order (diagnostics without a place first, as they were reported)."""
        return sorted(self.items, key=lambda d: (d.span.line, d.span.col))

    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]


def did_you_mean(name: str, candidates) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    cands = sorted(set(candidates) - {name})
    close = difflib.get_close_matches(name, cands, n=1, cutoff=0.6)
    if not close:  # a difference of case only (`normal` for `Normal`)
        close = [c for c in cands if c.lower() == name.lower()][:1]
    return f"did you mean `{close[0]}`?" if close else None
