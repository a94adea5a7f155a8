"""Stan habits that are syntax errors in .ppl: each recognised on the line where parsing failed, and explained."""
from __future__ import annotations

import re

from .diagnostics import Diagnostic
from .spans import Source, Span

# (pattern on the failing line (group "at" is what the error points at), message, hint). First match wins.
HABITS: list[tuple[re.Pattern, str, str]] = [
    (re.compile(r"^\s*(?P<at>for)\s+[A-Za-z_]\w*\s+in\b"),
     "pplc has no `for` loops: a plate goes over the items of a dim",
     "`for (i in 1:n) y[i] ~ normal(mu, sigma);` is `plate n {` / `y ~ Normal(mu, sigma)` / `}`: inside "
     "`plate n`, every array with dim `n` is seen one item at a time (or, with no plate, `y ~ Normal(mu, sigma)` "
     "draws every item of `y`); a loop whose item t uses item t-1 (a state carried along) is a `recur t in n { ... }` "
     "block"),
    (re.compile(r"^\s*(?P<at>[A-Za-z_]\w*\s*\(.*\))\s*~"),
     "only a name can be on the left of `~`",
     "name the value first, then observe it: `log_y = log(y)`, then `log_y ~ Normal(mu, sigma)` (a value "
     "computed from data alone is computed once, before sampling)"),
    (re.compile(r"^\s*[A-Za-z_]\w*(?P<at>\s*\[[^\]]*\])\s*~"),
     "a `~` observes a whole data array (or draws a whole latent): no index on its left",
     "inside `plate n`, `y` is already one item of `y`: write `y ~ ...`, with no `[i]`"),
    (re.compile(r"^\s*plate\b[^{#]*\{\s*(?P<at>[^\s#}][^#}]*)"),
     "a plate's statements go on their own lines, not on the line of its '{'",
     "write `plate n {`, then one statement a line, then `}` on a line of its own"),
]


def stan_habit(source: Source, line: int) -> Diagnostic | None:
    """The explanation of a Stan habit on `line` of `source`, or None if it has none of them."""
    text = source.line(line).split("#", 1)[0]
    for pattern, msg, hint in HABITS:
        m = pattern.search(text)
        if m:
            at = m.group("at").rstrip()
            start = m.start("at") + (len(m.group("at")) - len(m.group("at").lstrip()))
            return Diagnostic(msg, Span(line, start + 1, line, start + 1 + len(at.strip())), hint=hint)
    return None
