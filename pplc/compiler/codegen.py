"""Generate a readable, runnable TFP-on-JAX Python module from the checked IR."""
from __future__ import annotations

import keyword
import os

from .. import __version__
from . import ir

# Names the generated module defines or imports; .ppl names equal to these (or to Python keywords
# and builtins) get a trailing underscore in generated code, and keep their .ppl name everywhere else.
GENERATED_NAMES = {"jax", "jnp", "np", "tfp", "tfd", "tfed", "distribute_lib", "Root", "data", "dims", "masks",
                   "shard_axes", "model", "values", "make_model", "observed", "derived", "main", "psum", "Flat",
                   "HalfFlat", "DATA", "DIMS", "SHARDED_DIMS", "LATENTS", "DETERMINISTICS", "TRACKS", "OBSERVED",
                   "SOURCE", "SUPPORTS", "argparse", "os", "json", "functools", "sharded_sum", "sharded_mean",
                   "sharded_max", "sharded_min", "momentum_distribution", "pad_value_zero", "pad_value_one",
                   "pad_value_half", "pad_value_mean", "real"}
BUILTINS = set(dir(__import__("builtins")))

FUNC_CODE = {
    "exp": "jnp.exp", "log": "jnp.log", "log1p": "jnp.log1p", "expm1": "jnp.expm1", "sqrt": "jnp.sqrt",
    "abs": "jnp.abs", "sigmoid": "jax.nn.sigmoid", "logit": "jax.scipy.special.logit",
    "softplus": "jax.nn.softplus", "tanh": "jnp.tanh", "square": "jnp.square",
    "lgamma": "jax.scipy.special.gammaln", "log_sigmoid": "jax.nn.log_sigmoid", "where": "jnp.where",
    "softmax": "jax.nn.softmax", "log_softmax": "jax.nn.log_softmax",
}
# Python precedence of what we emit (higher binds tighter).
PREC = {"cmp": 1, "+": 2, "-": 2, "*": 3, "/": 3, "@": 3, "neg": 4, "**": 5, "atom": 6}


def py(name: str) -> str:
    """The Python identifier of a .ppl name in generated code.

    A name that is a Python keyword or builtin or one of GENERATED_NAMES, with any number of trailing
    underscores, gets one more: `class` -> `class_`, and a .ppl `class_` -> `class__`, so that no two
    .ppl names meet in Python."""
    base = name.rstrip("_")
    if keyword.iskeyword(base) or base in BUILTINS or base in GENERATED_NAMES:
        return name + "_"
    return name


def safe_text(text: str) -> str:
    """User text (a file name, a source line) made safe for a comment or docstring of generated code:
    no line breaks of any kind, quotes or backslashes, which could end the comment or the string."""
    return "".join(c if c.isprintable() and c not in "\"'\\" else "?" for c in text)


def _float(v) -> str:
    if isinstance(v, bool):
        return repr(v)
    r = repr(float(v))
    return r[:-1] if r.endswith(".0") else r


def _letters(dims):
    """One einsum letter per dim: its first letter when free, else the next free one."""
    out = {}
    used = set()
    for d in dims:
        if d in out:
            continue
        cands = [c for c in d.lower() if c.isalpha()] + list("abcdefghijklmnopqrstuvwxyz")
        c = next(c for c in cands if c not in used)
        used.add(c)
        out[d] = c
    return out


def _constant(e: ir.Expr) -> bool:
    """An expression of literals only, such as `-1` or `1 / 2`."""
    if isinstance(e, ir.Lit):
        return True
    return isinstance(e, ir.Elementwise) and e.op in ("+", "-", "*", "/", "**", "neg") and all(
        _constant(a) for a in e.args)


WIDTH = 100  # generated lines longer than this are wrapped inside their brackets (see `wrap_line`)
OPERATORS = ((" == ", " != ", " <= ", " >= ", " < ", " > "), (" + ", " - "), (" * ", " / ", " @ "))


def _code_chars(s: str):
    """(index, character) of the Python line `s` outside string literals, up to a comment."""
    quote, i = None, 0
    while i < len(s):
        c = s[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#":
            return
        else:
            yield i, c
        i += 1


def _groups(s: str):
    """The top-level bracket groups of `s`: (index of the opening bracket, index of its closing bracket)."""
    depth, start, out = 0, None, []
    for i, c in _code_chars(s):
        if c in "([{":
            if depth == 0:
                start = i
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and start is not None:
                out.append((start, i))
    return out


def _split_top(s: str, seps) -> list[str]:
    """`s` cut before each top-level (outside brackets and strings) occurrence of one of `seps`."""
    depth, cuts = 0, []
    for i, c in _code_chars(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and any(s.startswith(sep, i) for sep in seps):
            cuts.append(i)
    bounds = [0] + cuts + [len(s)]
    return [s[a:b].strip() for a, b in zip(bounds, bounds[1:])]


def _pack(ind: str, pieces: list[str], width: int) -> list[str]:
    lines, cur = [], ""
    for p in pieces:
        if cur and len(ind) + len(cur) + 1 + len(p) <= width:
            cur += " " + p
        else:
            if cur:
                lines.append(ind + cur)
            cur = p
    return lines + [ind + cur]


def wrap_line(line: str, width: int = WIDTH, inside: bool = False) -> list[str]:
    """A long line of generated code as several, broken inside brackets (where Python joins lines): the
    longest bracket group gets its arguments on the lines below, the closing bracket after the last one; a
    long argument breaks before its lowest-precedence operators. `inside`: the line is itself inside brackets."""
    if len(line) <= width:
        return [line]
    ind = line[:len(line) - len(line.lstrip())]
    body = line[len(ind):]
    if inside:
        for ops in OPERATORS:
            terms = _split_top(body, ops)
            if len(terms) > 1:
                out = []
                for piece in _pack(ind, terms, width):
                    out.extend(wrap_line(piece, width, inside=True) if len(piece) < len(line) else [piece])
                return out
    groups = [(a, b) for a, b in _groups(body) if b > a + 1]
    if not groups:
        return [line]
    a, b = max(groups, key=lambda g: g[1] - g[0])
    args = [x[1:].strip() if i else x for i, x in enumerate(_split_top(body[a + 1:b], (",",)))]
    pieces = [x + "," for x in args[:-1]] + [args[-1] + body[b:]]
    out = [ind + body[:a + 1]]
    for piece in _pack(ind + "    ", pieces, width):
        out.extend(wrap_line(piece, width, inside=True))
    return out


def wrap_code(lines: list[str], width: int = WIDTH) -> list[str]:
    """`wrap_line` on each line of code that is too long (docstrings and comments are left as written)."""
    out, in_doc = [], False
    for line in lines:
        quotes = line.count('"""')
        if in_doc or quotes or line.lstrip().startswith("#"):
            out.append(line)
        else:
            out.extend(wrap_line(line, width))
        if quotes % 2:
            in_doc = not in_doc
    return out


class ExprGen:
    """Lowers IR expressions to Python source in their natural layout: [..., plates, item]."""

    def __init__(self, model: ir.Model):
        self.model = model
        self.helpers: set[str] = set()  # reductions across devices that the code uses

    def dim(self, name: str) -> str:
        d = self.model.dim_map.get(name)
        if d is not None and d.source == "literal":
            return str(d.size)
        return f"dims[{name!r}]"

    def code(self, e: ir.Expr) -> str:
        return self.gen(e)[0]

    def gen(self, e: ir.Expr) -> tuple[str, int]:
        """(code, precedence)."""
        m = getattr(self, "_" + type(e).__name__)
        return m(e)

    def wrap(self, e, prec) -> str:
        c, p = self.gen(e)
        return c if p >= prec else f"({c})"

    def lift(self, e: ir.Expr, plates: tuple[str, ...], rank: int) -> tuple[str, int]:
        """`e` with size-1 axes added so that it lines up with [..., plates, item of `rank` dims]."""
        code, prec = self.gen(e)
        if _constant(e):  # a Python number in generated code: it broadcasts as it is, and cannot be indexed
            return code, prec
        idx = [":" if p in e.axes.plates else "None" for p in plates]
        idx += ["None"] * (rank - len(e.axes.item)) + [":"] * len(e.axes.item)
        if "None" not in idx:
            return code, prec
        inner = code if prec >= PREC["atom"] else f"({code})"
        return f"{inner}[..., {', '.join(idx)}]", PREC["atom"]

    # --- nodes
    def _Lit(self, e: ir.Lit):
        if e.dtype == "bool":
            return repr(bool(e.value)), PREC["atom"]
        if e.dtype == "int":
            return (str(int(e.value)), PREC["atom"]) if e.value >= 0 else (str(int(e.value)), PREC["neg"])
        s = _float(e.value)
        return s, PREC["atom"] if e.value >= 0 else PREC["neg"]

    def _Ref(self, e: ir.Ref):
        name = py(e.name)
        view = e.axes.all
        if view == e.phys:
            return name, PREC["atom"]
        letters = _letters(e.phys)
        src = "".join(letters[d] for d in e.phys)
        dst = "".join(letters[d] for d in view)
        return f"jnp.einsum('...{src}->...{dst}', {name})", PREC["atom"]

    def _Elementwise(self, e: ir.Elementwise):
        plates, rank = e.axes.plates, len(e.axes.item)
        args = [self.lift(a, plates, rank) for a in e.args]
        if e.op in ("+", "-", "*", "/"):
            p = PREC[e.op]
            (l, lp), (r, rp) = args
            l = l if lp >= p else f"({l})"
            r = r if rp > p else f"({r})"
            return f"{l} {e.op} {r}", p
        if e.op == "**":
            (l, lp), (r, rp) = args
            l = l if lp > PREC["**"] else f"({l})"
            r = r if rp >= PREC["neg"] else f"({r})"
            return f"{l}**{r}", PREC["**"]
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            (l, lp), (r, rp) = args
            l = l if lp > PREC["cmp"] else f"({l})"
            r = r if rp > PREC["cmp"] else f"({r})"
            return f"{l} {e.op} {r}", PREC["cmp"]
        if e.op == "neg":
            (a, ap), = args
            return f"-{a if ap >= PREC['neg'] else '(' + a + ')'}", PREC["neg"]
        return f"{FUNC_CODE[e.op]}({', '.join(c for c, _ in args)})", PREC["atom"]

    def _MatMul(self, e: ir.MatMul):
        letters = _letters(e.left.axes.all + e.right.axes.all)
        l = "".join(letters[d] for d in e.left.axes.all)
        r = "".join(letters[d] for d in e.right.axes.all)
        o = "".join(letters[d] for d in e.axes.all)
        return f"jnp.einsum('...{l},...{r}->...{o}', {self.code(e.left)}, {self.code(e.right)})", PREC["atom"]

    def _axis(self, item, dim):
        return item.index(dim) - len(item)

    def mask(self, dim: str, layout: tuple[str, ...]) -> str:
        """The validity mask of sharded `dim`, shaped to line up with `layout` (right-aligned)."""
        after = len(layout) - layout.index(dim) - 1
        m = f"masks[{dim!r}]"
        return m if after == 0 else f"{m}[:{', None' * after}]"

    def _Reduce(self, e: ir.Reduce):
        item = e.arg.axes.item
        axes = tuple(self._axis(item, d) for d in e.dims)
        ax = str(axes[0]) if len(axes) == 1 else str(axes)
        x = self.code(e.arg)
        if e.func == "argmax":
            return f"jnp.argmax({x}, axis={ax})", PREC["atom"]
        if e.func == "logsumexp":
            return f"jax.scipy.special.logsumexp({x}, axis={ax})", PREC["atom"]
        if e.sharded_dim is None:
            return f"jnp.{e.func}({x}, axis={ax})", PREC["atom"]
        m = self.mask(e.sharded_dim, e.arg.axes.all)
        self.helpers.add(f"sharded_{e.func}")
        if e.func == "mean":
            others = [self.dim(d) for d in e.dims if d != e.sharded_dim]
            extra = f", n_other={' * '.join(others)}" if others else ""
            return f"sharded_mean({x}, {m}, {ax}, shard_axes{extra})", PREC["atom"]
        return f"sharded_{e.func}({x}, {m}, {ax}, shard_axes)", PREC["atom"]

    def _LastAxis(self, e: ir.LastAxis):
        return f"{FUNC_CODE[e.func]}({self.code(e.arg)}, axis=-1)", PREC["atom"]

    def _TakeIndex(self, e: ir.TakeIndex):
        rest = len(e.value.axes.item) - 1
        idx = ", ".join(["...", str(e.index)] + [":"] * rest)
        return f"{self.wrap(e.value, PREC['atom'])}[{idx}]", PREC["atom"]

    def _Gather(self, e: ir.Gather):
        axis = -len(e.value.axes.item)
        return f"jnp.take({self.code(e.value)}, {self.code(e.index)}, axis={axis})", PREC["atom"]

    def _Transpose(self, e: ir.Transpose):
        return f"jnp.swapaxes({self.code(e.value)}, -1, -2)", PREC["atom"]


class ModuleGen:
    """Writes the whole generated module."""

    def __init__(self, model: ir.Model, source_name: str):
        self.model = model
        self.x = ExprGen(model)
        self.src = safe_text(os.path.basename(source_name))

    def comment(self, v: ir.Variable) -> str:
        return f"# {self.src}:{v.line}  {safe_text(v.source_line)}"

    def shape_code(self, dims) -> str:
        return "[" + ", ".join(self.x.dim(d) for d in dims) + "]"

    def dist_layers(self, v: ir.Variable) -> list[tuple[str, list[str]]]:
        """The site's distribution as constructor layers, innermost first: [(constructor, args), ...].

        Its batch covers [plates, item] (less the distribution's event dims); those become event dims."""
        dist = v.dist
        spec = dist.spec
        batch = v.phys[:len(v.phys) - spec.event_rank] if spec.event_rank else v.phys
        brank = len(batch) - len(v.plates)
        given = [p for p, _ in dist.params]
        positional = not spec.one_of and given == list(spec.params[:len(given)])
        covered = set()  # the batch dims that some parameter varies over
        for pname, e in dist.params:
            r = spec.param_event_rank.get(pname, 0)
            covered |= set(e.axes.plates) | set(e.axes.item[:len(e.axes.item) - r] if r else e.axes.item)
        # iid (no parameter varies over the batch): tfd.Sample adds the batch dims, so parameters stay unlifted.
        iid = v.sharded_dim is None and not covered
        # Literal parameters only: TFP makes such a distribution float32 whatever the run's dtype, so they go
        # through `real` (the run's real dtype; float64 under --x64, where data and latents are float64).
        literal_only = all(_constant(e) for _, e in dist.params)
        if literal_only:
            self.x.helpers.add("real")
        args = []
        for pname, e in dist.params:
            r = spec.param_event_rank.get(pname, 0)
            if literal_only:
                code = _float(e.value) if isinstance(e, ir.Lit) and e.dtype != "bool" else (
                    str(float(e.value)) if isinstance(e, ir.Lit) else self.x.code(e))
                code = f"real({code})"
            elif isinstance(e, ir.Lit):
                code = _float(e.value) if e.dtype != "bool" else str(float(e.value))
            elif iid:
                code = self.x.code(e)
            else:
                code, _ = self.x.lift(e, v.plates, brank + r)
            args.append(code if positional else f"{pname}={code}")
        layers = [(spec.constructor, args)]
        sharded = v.sharded_dim is not None
        if iid:  # scalar parameters, drawn over [plates, item]
            if batch:
                layers.append(("tfd.Sample", [self.shape_code(batch)]))
            return layers
        if not set(batch) <= covered:
            layers.append(("tfd.BatchBroadcast", [self.shape_code(batch)]))
        if sharded:
            pad_value = PAD_VALUE[v.support]
            self.x.helpers.add(pad_value)
            layers.append(("tfd.Masked", [self.x.mask(v.sharded_dim, batch), f"safe_sample_fn={pad_value}"]))
        if batch:
            layers.append(("tfd.Independent", [f"reinterpreted_batch_ndims={len(batch)}"]))
        if sharded:
            layers.append(("tfed.Sharded", ["shard_axis_name=shard_axes"]))
        return layers

    def render_layers(self, layers, name: str, ind: str) -> str:
        """Nested constructor calls, the outermost named; one layer a line when a line would be long."""
        layers = list(layers)
        ctor, args = layers[-1]
        layers[-1] = (ctor, args + [f"name={name!r}"])
        def flat(i):
            ctor, args = layers[i]
            return f"{ctor}({', '.join(([flat(i - 1)] if i else []) + args)})"

        def nest(i, pad):
            if i == 0 or len(pad) + len(flat(i)) <= 96:
                return flat(i)
            ctor, args = layers[i]
            inner = pad + "    "
            return f"{ctor}(\n{inner}{nest(i - 1, inner)},\n{inner}{', '.join(args)})"

        return nest(len(layers) - 1, ind)

    def site(self, v: ir.Variable, ind: str) -> list[str]:
        d = self.render_layers(self.dist_layers(v), v.name, ind)
        if not any(e.latent for _, e in v.dist.params):
            d = f"Root({d})"
        if v.kind == "latent":
            return [f"{ind}{py(v.name)} = yield {d}"]
        return [f"{ind}yield {d}"]

    def data_bindings(self, ind: str, names=None) -> list[str]:
        lines = []
        for v in self.model.of_kind("data"):
            if names is None or v.name in names:
                lines.append(f"{ind}{py(v.name)} = data[{v.name!r}]")
        return lines

    def generate(self) -> str:
        m = self.model
        out: list[str] = []
        w = out.append
        w(f'"""{os.path.splitext(self.src)[0]}: generated by pplc {__version__} from {self.src}.')
        w("")
        w("The joint distribution as TensorFlow Probability on JAX, written to run as one SPMD program over a")
        w("device mesh: parts inside sharded plates are `tfed.Sharded` (their log-density is summed across")
        w("devices), padded items of sharded dims are masked out. Regenerate with `pplc compile`; run on its")
        w("own with `python THIS_FILE.py --data DATA.npz --devices N`.")
        w('"""')
        w("import jax")
        w("import jax.numpy as jnp")
        w("import tensorflow_probability.substrates.jax as tfp")
        w("from tensorflow_probability.substrates.jax.experimental import distribute as tfed")
        w("from tensorflow_probability.substrates.jax.internal import distribute_lib")
        w("")
        w("tfd = tfp.distributions")
        w("Root = tfed.JointDistributionCoroutine.Root")
        w("")
        used = {v.dist.spec.name for v in m.variables if v.dist is not None}
        if "Flat" in used or "HalfFlat" in used:
            out.extend(FLAT_CLASSES)
        w("# What the runtime needs to know: data (dtype, dims), dim sizes known now, stored layouts.")
        w("DATA = {" + ", ".join(f"{v.name!r}: ({v.dtype!r}, {v.phys!r})" for v in m.of_kind("data")) + "}")
        w("DIMS = {" + ", ".join(f"{d.name!r}: {d.size!r}" for d in m.dims) + "}")
        w(f"SHARDED_DIMS = {m.sharded_dims!r}")
        w("LATENTS = {" + ", ".join(f"{v.name!r}: {v.phys!r}" for v in m.of_kind("latent")) + "}")
        w("OBSERVED = {" + ", ".join(f"{v.name!r}: {v.phys!r}" for v in m.of_kind("observed")) + "}")
        w("DETERMINISTICS = {" + ", ".join(f"{v.name!r}: {v.phys!r}" for v in m.of_kind("deterministic")) + "}")
        w("TRACKS = {" + ", ".join(f"{v.name!r}: {v.phys!r}" for v in m.of_kind("track")) + "}")
        w("SUPPORTS = {" + ", ".join(f"{v.name!r}: {v.support!r}" for v in m.of_kind("observed")) + "}")
        w("")
        w("")
        for name in sorted(self._helpers_used()):
            out.extend({**SHARDED_REDUCTIONS, **PAD_VALUES, "real": REAL}[name].splitlines())
            w("")
            w("")
        w("def make_model(data, dims, masks, shard_axes=()):")
        w('    """The joint distribution of the model on this device\'s part of the data.')
        w("")
        w("    data: arrays by .ppl name (sharded dims hold this device's items); dims: sizes by dim name (sharded")
        w("    dims: this device's padded size); masks: for each sharded dim, which of this device's items are real;")
        w('    shard_axes: the mesh axes that sharded dims are split over ([] or () when not split)."""')
        used_data = self._used_data()
        out.extend(self.data_bindings("    ", used_data))
        for v in m.of_kind("transformed"):
            w("    " + self.comment(v))
            w(f"    {py(v.name)} = {self.x.code(v.value)}")
        w("")
        w("    @tfed.JointDistributionCoroutine")
        w("    def model():")
        body = False
        for v in m.variables:
            if v.kind in ("latent", "observed"):
                w("        " + self.comment(v))
                out.extend(self.site(v, "        "))
                body = True
            elif v.kind == "deterministic":
                w("        " + self.comment(v))
                w(f"        {py(v.name)} = {self.x.code(v.value)}")
        if not body:
            w("        return")
            w("        yield")
        w("")
        w("    return model")
        w("")
        w("")
        w("def observed(data):")
        w('    """The observed values, by name, laid out as the model\'s sites expect them."""')
        obs = m.of_kind("observed")
        w("    return {" + ", ".join(f"{v.name!r}: {self._obs_view(v)}" for v in obs) + "}")
        w("")
        w("")
        w("def derived(values, data, dims, masks, shard_axes=()):")
        w('    """Deterministic and tracked quantities for latent `values` (by name; leading dims are chains)."""')
        det = m.of_kind("deterministic", "track")
        if not det:
            w("    return {}")
        else:
            out.extend(self.data_bindings("    ", self._used_data(det_only=True)))
            for v in m.of_kind("latent"):
                w(f"    {py(v.name)} = values[{v.name!r}]")
            for v in m.variables:
                if v.kind in ("transformed", "deterministic", "track"):
                    w("    " + self.comment(v))
                    w(f"    {py(v.name)} = {self.x.code(v.value)}")
            w("    return {" + ", ".join(f"{v.name!r}: {py(v.name)}" for v in det) + "}")
        w("")
        w("")
        out.extend(self.momentum())
        w("")
        w("")
        out[:] = wrap_code(out)
        out.extend(MAIN_TEMPLATE.splitlines())
        return "\n".join(out) + "\n"

    def momentum(self) -> list[str]:
        """`momentum_distribution`: what preconditioned HMC draws momenta from, Sharded for sharded latents."""
        out = ["def momentum_distribution(dims, chains, shard_axes=()):",
               '    """Momenta for preconditioned HMC, one standard normal per unconstrained latent element and chain.',
               "",
               "    Parts of sharded latents are `tfed.Sharded`: each device draws the momenta of its own items, and",
               '    their kinetic energy is summed across devices."""',
               "    return tfed.JointDistributionSequential(["]
        for v in self.model.of_kind("latent"):
            dims = [self.x.dim(d) for d in v.phys]
            if v.support == "simplex":
                dims[-1] = f"{dims[-1]} - 1"
            shape = "[chains" + "".join(", " + d for d in dims) + "]"
            part = f"tfd.Independent(tfd.Normal(jnp.zeros({shape}), 1.), reinterpreted_batch_ndims={len(dims)})"
            if v.sharded_dim is not None:
                part = f"tfed.Sharded({part}, shard_axis_name=shard_axes)"
            out.append(f"        {part},  # {v.name}")
        out.append("    ])")
        return out

    def _helpers_used(self) -> set[str]:
        """Generate every expression once (discarding the text) to learn which helpers it needs."""
        for v in self.model.variables:
            if v.value is not None:
                self.x.code(v.value)
            if v.dist is not None:
                self.dist_layers(v)
        return set(self.x.helpers)

    def _obs_view(self, v: ir.Variable) -> str:
        data_var = next(d for d in self.model.of_kind("data") if d.name == v.name)
        ref = ir.Ref(ir.Axes(v.plates, tuple(d for d in v.phys if d not in v.plates)), data_var.dtype, False,
                     v.name, data_var.phys, "data")
        code = self.x.code(ref).replace(py(v.name), f"data[{v.name!r}]", 1)
        return code

    def _used_data(self, det_only=False) -> set[str]:
        """Data names referenced by the model (or by deterministics and tracks)."""
        names: set[str] = set()

        def walk(e):
            if isinstance(e, ir.Ref) and e.kind == "data":
                names.add(e.name)
            for f in ("args",):
                for a in getattr(e, f, ()):
                    walk(a)
            for f in ("left", "right", "arg", "value", "index"):
                sub = getattr(e, f, None)
                if isinstance(sub, ir.Expr):
                    walk(sub)

        for v in self.model.variables:
            if det_only and v.kind not in ("transformed", "deterministic", "track"):
                continue
            if not det_only and v.kind == "track":
                continue
            if v.value is not None:
                walk(v.value)
            if v.dist is not None:
                for _, e in v.dist.params:
                    walk(e)
        return names


# What tfd.Masked puts in place of padded items (its `safe_sample_fn`): a fixed point of the site's support, where
# the log density is finite. TFP's default draws a fresh sample of the whole site instead, a random draw at every
# log-density evaluation (every leapfrog step) that cost a third of MNIST's gradient time on 8 CPU devices.
PAD_VALUE = {"real": "pad_value_zero", "positive": "pad_value_one", "unit": "pad_value_half",
             "interval": "pad_value_mean", "simplex": "pad_value_mean", "binary": "pad_value_zero",
             "count": "pad_value_zero", "bounded_count": "pad_value_zero", "categorical": "pad_value_zero"}
REAL = '''def real(x):
    """A literal parameter as an array of the run's real dtype: float32, or float64 under jax_enable_x64 (TFP
    would make a distribution of Python numbers float32 either way)."""
    return jnp.asarray(x, jnp.result_type(float))'''
PAD_VALUES = {
    "pad_value_zero": '''def pad_value_zero(d):
    """What tfd.Masked puts at padded items: 0, in the support (TFP's default draws a sample at every call)."""
    return jnp.zeros([], d.dtype)''',
    "pad_value_one": '''def pad_value_one(d):
    """What tfd.Masked puts at padded items: 1, in the support (TFP's default draws a sample at every call)."""
    return jnp.ones([], d.dtype)''',
    "pad_value_half": '''def pad_value_half(d):
    """What tfd.Masked puts at padded items: 0.5, in (0, 1) (TFP's default draws a sample at every call)."""
    return jnp.full([], 0.5, d.dtype)''',
    "pad_value_mean": '''def pad_value_mean(d):
    """What tfd.Masked puts at padded items: the mean (TFP's default draws a sample at every call)."""
    return d.mean()''',
}

SHARDED_REDUCTIONS = {
    "sharded_sum": '''def sharded_sum(x, mask, axis, shard_axes):
    """Sum over a dim split across devices: this device's real (unpadded) items, then over devices."""
    return distribute_lib.psum(jnp.sum(jnp.where(mask, x, 0), axis=axis), shard_axes)''',
    "sharded_mean": '''def sharded_mean(x, mask, axis, shard_axes, n_other=1):
    """Mean over a dim split across devices (and `n_other` items of the other dims reduced)."""
    total = distribute_lib.psum(jnp.sum(jnp.where(mask, x, 0), axis=axis), shard_axes)
    return total / distribute_lib.psum(jnp.sum(mask) * n_other, shard_axes)''',
    "sharded_max": '''def sharded_max(x, mask, axis, shard_axes):
    """Max over a dim split across devices, padded items left out."""
    return distribute_lib.pmax(jnp.max(jnp.where(mask, x, -jnp.inf), axis=axis), shard_axes)''',
    "sharded_min": '''def sharded_min(x, mask, axis, shard_axes):
    """Min over a dim split across devices, padded items left out."""
    return distribute_lib.pmin(jnp.min(jnp.where(mask, x, jnp.inf), axis=axis), shard_axes)''',
}

FLAT_CLASSES = '''
class Flat(tfd.Normal):
    """The improper flat prior on the real line (log-density 0); draws are Normal(0, 1) placeholders."""

    def __init__(self, loc=0., scale=1., validate_args=False, allow_nan_stats=True, name="Flat"):
        super().__init__(loc=real(loc), scale=real(scale), validate_args=validate_args,
                         allow_nan_stats=allow_nan_stats, name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):  # Normal's (loc, scale): the same parameters
        return tfd.Normal._parameter_properties(dtype, num_classes=num_classes)

    def _log_prob(self, x):
        return jnp.zeros_like(x)


class HalfFlat(tfd.HalfNormal):
    """The improper flat prior on the positive half-line (log-density 0); draws are HalfNormal(1) placeholders."""

    def __init__(self, scale=1., validate_args=False, allow_nan_stats=True, name="HalfFlat"):
        super().__init__(scale=real(scale), validate_args=validate_args, allow_nan_stats=allow_nan_stats,
                         name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):  # HalfNormal's (scale): the same parameter
        return tfd.HalfNormal._parameter_properties(dtype, num_classes=num_classes)

    def _log_prob(self, x):
        return jnp.where(x >= 0, jnp.zeros_like(x), -jnp.inf)

'''.splitlines()

MAIN_TEMPLATE = '''
# ----------------------------------------------------------------------------------------------------
# Running this file on its own: HMC with dual-averaging step size, the data split over `--devices`
# devices with jax.shard_map, as TFP's "Distributed inference with JAX" does by hand. `pplc run` does
# more (NUTS, checks of the data, diagnostics); this is the plain program.
def main(argv=None):
    import argparse
    import json

    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help=".npz or .json file with the data, by name")
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--leapfrog", type=int, default=10)
    ap.add_argument("--step-size", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fit.npz")
    args = ap.parse_args(argv)
    jax.config.update("jax_num_cpu_devices", args.devices)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    if args.data.endswith(".json"):
        raw = {k: np.asarray(v) for k, v in json.load(open(args.data)).items()}
    else:
        raw = dict(np.load(args.data, allow_pickle=False))
    sizes = {d: s for d, s in DIMS.items() if s is not None}
    for name, (dtype, shape) in DATA.items():
        if not shape:
            if dtype == "int" and name not in sizes:
                sizes[name] = int(raw[name])
            continue
        for d, n in zip(shape, np.shape(raw[name])):
            sizes.setdefault(d, n)
    ndev = args.devices
    padded = {d: -(-sizes[d] // ndev) * ndev for d in SHARDED_DIMS}

    def pad(x, shape):
        x = np.asarray(x)
        for axis, d in enumerate(shape):
            if d in padded:
                x = np.pad(x, [(0, padded[d] - sizes[d]) if a == axis else (0, 0) for a in range(x.ndim)], mode="edge")
        return x

    def spec(shape, lead=0):
        return P(*([None] * lead + ["data" if d in padded else None for d in shape]))

    dtypes = {"real": np.float32, "int": np.int32, "bool": np.bool_}
    data = {k: pad(np.asarray(raw[k], dtypes[t]), s) for k, (t, s) in DATA.items()}
    masks = {d: np.arange(padded[d]) < sizes[d] for d in padded}
    local = dict(sizes, **{d: padded[d] // ndev for d in padded})
    mesh = Mesh(np.array(jax.devices()[:ndev]), ("data",))
    axes = ["data"] if padded else []
    names = list(LATENTS)

    def run(seed, data, masks):
        model = make_model(data, local, masks, axes)
        pinned = model.experimental_pin(**observed(data))
        bijector = pinned.experimental_default_event_space_bijector()
        init_seed, seed = jax.random.split(seed)
        state = pinned.sample_unpinned(args.chains, seed=init_seed)
        z = bijector.inverse(state)

        def target(*parts):
            x = bijector.forward(type(z)(*parts))
            return pinned.unnormalized_log_prob(x) + bijector.forward_log_det_jacobian(type(z)(*parts))

        if any(d in SHARDED_DIMS for shape in LATENTS.values() for d in shape):
            # Sharded latents: each device draws its own items' momenta and the kinetic energy is summed
            # across devices, so that every device makes the same accept decision (the seed's MovieLens study).
            kernel = tfp.experimental.mcmc.PreconditionedHamiltonianMonteCarlo(
                target, args.step_size, args.leapfrog,
                momentum_distribution=momentum_distribution(local, args.chains, axes))
        else:
            kernel = tfp.mcmc.HamiltonianMonteCarlo(target, args.step_size, args.leapfrog)
        kernel = tfp.mcmc.DualAveragingStepSizeAdaptation(kernel, int(0.8 * args.warmup))
        draws, trace = tfp.mcmc.sample_chain(
            args.draws, list(z), kernel=kernel, num_burnin_steps=args.warmup, seed=seed,
            trace_fn=lambda _, r: (r.inner_results.accepted_results.target_log_prob,
                                   r.inner_results.accepted_results.step_size))
        return list(bijector.forward(type(z)(*draws))), trace

    in_specs = (P(), {k: spec(s) for k, (t, s) in DATA.items()}, {d: P("data") for d in padded})
    out_specs = ([spec(LATENTS[n], lead=2) for n in names], (P(), P()))
    spmd = jax.jit(jax.shard_map(run, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False))
    draws, (log_prob, step_size) = spmd(jax.random.PRNGKey(args.seed), data, masks)
    out = {}
    for n, x in zip(names, draws):
        x = np.swapaxes(np.asarray(x), 0, 1)  # [chains, draws, ...]
        for axis, d in enumerate(LATENTS[n]):
            if d in padded:
                x = np.take(x, np.arange(sizes[d]), axis=axis + 2)
        out[n] = x
    out["trace/log_prob"] = np.swapaxes(np.asarray(log_prob), 0, 1)
    np.savez(args.out, **out)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in out.items()))


if __name__ == "__main__":
    main()
'''.lstrip("\n")


def generate(model: ir.Model, source_name: str | None = None) -> str:
    """The generated Python module's source text."""
    return ModuleGen(model, source_name or model.filename).generate()
