"""Stan habits that are syntax errors in .ppl: each recognised on the line where parsing failed, and explained."""
from __future__ import annotations

import re

from .diagnostics import Diagnostic
from .spans import Source, Span

# (pattern on the failing line (group "at" is what the error points at), message, hint). First match wins.
HABITS: list[tuple[re.Pattern, str, str]] = [
    (re.compile(r"\b(?:real|int|bool|vector|row_vector|matrix)\s*(?P<at><\s*(?:lower|upper|offset|multiplier)\b)"),
     "`<lower=...>` / `<upper=...>` are Stan's constrained types; a .ppl type has no bounds",
     "a latent's constraint comes from its distribution's support: `sigma ~ HalfNormal(1)` is positive, "
     "`p ~ Beta(1, 1)` in (0, 1); data are checked against the support of the distribution that observes them"),
    (re.compile(r"^\s*(?P<at>for)\s+[A-Za-z_]\w*\s+in\b"),
     "pplc has no `for` loops: a plate goes over the items of a dim",
     "`for (i in 1:n) y[i] ~ normal(mu, sigma);` is `plate n {` / `y ~ Normal(mu, sigma)` / `}`: inside "
     "`plate n`, every array with dim `n` is seen one item at a time (or, with no plate, `y ~ Normal(mu, sigma)` "
     "draws every item of `y`)"),
    (re.compile(r"^\s*(?P<at>target)\s*\+="),
     "pplc has no `target +=`: each term of the log density comes from a `~` statement",
     "write the term as a distribution of data or of a latent, e.g. `y ~ Normal(mu, sigma)` for "
     "`target += normal_lpdf(y | mu, sigma)`"),
    (re.compile(r"^\s*(?P<at>[A-Za-z_]\w*\s*\(.*\))\s*~"),
     "only a name can be on the left of `~`: pplc does not observe a value computed from data",
     "observe the data with the matching distribution, e.g. `y ~ LogNormal(mu, sigma)` for "
     "`log(y) ~ Normal(mu, sigma)`, or compute the values before sampling and pass them as data"),
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
