"""Check a parsed program and build the IR: names in order, dtypes, named-dim shapes, plates, placement."""
from __future__ import annotations

import keyword
import math

from ..dsl import ast
from ..dsl.diagnostics import DiagnosticSink, did_you_mean
from ..dsl.spans import Source, Span
from . import ir
from .distributions import DISTRIBUTIONS

ELEMENTWISE_FUNCS = {"exp", "log", "log1p", "expm1", "sqrt", "abs", "sigmoid", "logit", "softplus",
                     "tanh", "square", "lgamma", "log_sigmoid"}
REDUCE_ALL = {"sum", "mean", "max", "min"}
LAST_AXIS_REDUCE = {"logsumexp", "argmax"}
LAST_AXIS_KEEP = {"softmax", "log_softmax"}
FUNCTIONS = ELEMENTWISE_FUNCS | REDUCE_ALL | LAST_AXIS_REDUCE | LAST_AXIS_KEEP | {"dot", "where"}
ARITH = {"+", "-", "*", "/", "**"}
COMPARE = {"==", "!=", "<", "<=", ">", ">="}


class _Bad(Exception):
    """An expression already reported; stops checking the statement without cascading."""


INT_MAX = 2**31 - 1  # ints are int32 on the device
REAL_MAX = 3.4028234663852886e38  # and reals float32


def shape_str(dims) -> str:
    return "[" + ", ".join(dims) + "]" if dims else "a scalar"


def has_shape(dims) -> str:
    """`has shape [a, b]`, or `is a scalar`."""
    return f"has shape [{', '.join(dims)}]" if dims else "is a scalar"


# Parameter names from Stan, PyMC and textbooks, and TFP's names for them.
PARAM_ALIASES = {"mean": "loc", "mu": "loc", "location": "loc", "sd": "scale", "sigma": "scale", "std": "scale",
                 "stddev": "scale", "lambda": "rate", "lam": "rate", "beta": "rate", "alpha": "concentration",
                 "shape": "concentration", "p": "probs", "prob": "probs", "theta": "probs", "n": "total_count",
                 "N": "total_count", "nu": "df", "lower": "low", "upper": "high", "lb": "low", "ub": "high"}

KIND_WORDS = {"data": "data", "latent": "a random variable", "observed": "data",
              "deterministic": "computed from random variables", "transformed": "computed from data",
              "track": "a tracked quantity"}


def _promote(*dtypes: str) -> str:
    if "real" in dtypes:
        return "real"
    if "int" in dtypes:
        return "int"
    return "bool"


class Checker:
    """Walks the AST once, in order, building IR variables; collects every independent error."""

    def __init__(self, program: ast.Program, source: Source, consts: dict | None = None):
        self.program = program
        self.source = source
        self.const_overrides = dict(consts or {})
        self.sink = DiagnosticSink(source)
        self.vars: dict[str, ir.Variable] = {}
        self.order: list[ir.Variable] = []
        self.dims: dict[str, ir.Dim] = {}
        self.plates: list[ir.Plate] = []
        self.sharded: dict[str, Span] = {}  # dim -> where a plate shards it
        self.unsharded: dict[str, Span] = {}
        self.dim_first_use: dict[str, Span] = {}
        # Names whose statement had an error (already reported): uses of them are not errors again.
        self.failed: set[str] = set()
        self.data_decl_dims = {d.name for st in _walk(program.statements) if isinstance(st, ast.DataDecl)
                               for d in st.type.dims if d.name}

    # ------------------------------------------------------------------ driver
    def run(self) -> ir.Model:
        self._collect_plates(self.program.statements)
        for stmt in self.program.statements:
            self._stmt(stmt, ())
        for name, dim in self.dims.items():
            if dim.source == "data" and not any(name in v.phys for v in self.order if v.kind == "data") \
                    and name not in self.data_decl_dims:  # (a data declaration with an error has it)
                self.sink.error(f"the size of dim `{name}` is unknown: no data array has it, and there is "
                                f"no `const {name}` or `data {name}: int`", self.dim_first_use.get(name, dim.span),
                                hint=did_you_mean(name, [d for d in self.dims if not d.isdigit()])
                                or f"give its size: `const {name} = 10`, or declare data with this dim")
        self.sink.raise_if_errors()
        return ir.Model(self.source.filename, tuple(self.order), tuple(self.dims.values()), tuple(self.plates))

    def _collect_plates(self, stmts, in_sharded=False):
        for s in stmts:
            if isinstance(s, ast.Plate):
                if s.sharded and in_sharded:
                    pass  # a sharded plate in a sharded plate: reported in `_plate`, its dim left replicated
                else:
                    (self.sharded if s.sharded else self.unsharded).setdefault(s.dim, s.dim_span)
                self._collect_plates(s.body, in_sharded or s.sharded)

    # ------------------------------------------------------------------ dims
    def _dim(self, d: ast.Dim) -> str:
        if d.size is not None:
            name = str(d.size)
            self.dims.setdefault(name, ir.Dim(name, d.size, "literal", False, d.span))
            return name
        name = d.name
        if name in self.dims:
            return name
        if name in self.failed:
            raise _Bad
        self.dim_first_use.setdefault(name, d.span)
        var = self.vars.get(name)
        if var is not None and var.kind == "const":
            if not isinstance(var.const_value, int) or var.const_value < 1:
                self.sink.error(f"dim `{name}` needs a positive integer size, but const `{name}` is "
                                f"{var.const_value}", d.span)
                raise _Bad
            dim = ir.Dim(name, var.const_value, "const", False, d.span)
        elif var is not None and var.kind == "data" and var.dtype == "int" and not var.phys:
            dim = ir.Dim(name, None, "data-scalar", name in self.sharded, d.span)
        elif var is not None:
            self._not_a_dim(name, var, d.span)
            raise _Bad
        else:
            dim = ir.Dim(name, None, "data", name in self.sharded, d.span)
        self.dims[name] = dim
        return name

    def _not_a_dim(self, name: str, var: ir.Variable, span: Span) -> None:
        if var.kind == "data" and not var.phys:
            self.sink.error(f"`{name}` is {var.dtype} data, not a dim", span,
                            hint=f"a dim's size is a whole number: declare `data {name}: int`")
        elif var.kind == "data":
            dims = ", ".join(f"`{d}`" for d in var.phys)
            self.sink.error(f"`{name}` is a data array, not a dim", span,
                            hint=f"its dim{'s are' if len(var.phys) > 1 else ' is'} {dims}")
        else:
            self.sink.error(f"`{name}` is {KIND_WORDS.get(var.kind, var.kind)}, not a dim", span,
                            hint="a dim is a name whose size comes from the data, a `const`, or a whole number")

    def _is_sharded(self, dim: str) -> bool:
        return dim in self.sharded

    def _check_one_sharded(self, axes: ir.Axes, span: Span, what: str):
        sh = sorted({d for d in axes.all if self._is_sharded(d)})
        if len(sh) > 1:
            self.sink.error(f"{what} would have two sharded dims, `{sh[0]}` and `{sh[1]}`; a value can be split "
                            "across devices along one dim only", span,
                            hint="shard one of the plates only, or keep the two apart")
            raise _Bad

    # ------------------------------------------------------------------ statements
    def _define(self, var: ir.Variable, span: Span) -> None:
        if var.name in self.vars:
            prev = self.vars[var.name]
            self.sink.error(f"`{var.name}` is already defined (at {prev.span})", span,
                            hint="each name is defined once: give this one another name")
            raise _Bad
        self.vars[var.name] = var
        self.order.append(var)

    def _name_ok(self, name: str, span: Span) -> bool:
        if name.startswith("_"):
            self.sink.error(f"names starting with '_' are reserved (`{name}`)", span)
            return False
        if name in DISTRIBUTIONS or name in FUNCTIONS:
            self.sink.error(f"`{name}` is the name of a built-in {'distribution' if name in DISTRIBUTIONS else 'function'}",
                            span, hint=f"choose another name, e.g. `{name.lower()}_`")
            return False
        return True

    def _var(self, stmt, name, kind, dtype, plates, phys, **kw) -> ir.Variable:
        return ir.Variable(name=name, kind=kind, dtype=dtype, plates=plates, phys=phys, span=stmt.span,
                           line=stmt.span.line, source_line=self.source.line(stmt.span.line).strip(), **kw)

    def _stmt(self, stmt: ast.Stmt, ctx: tuple[ir.Plate, ...]) -> None:
        try:
            for e in _exprs_of(stmt):
                depth = _depth(e)
                if depth > MAX_DEPTH:
                    self.sink.error(f"this expression is nested {depth} levels deep; pplc handles at most {MAX_DEPTH}",
                                    e.span, hint="split it into several `NAME = EXPR` statements")
                    raise _Bad
            if isinstance(stmt, ast.DataDecl):
                self._data(stmt, ctx)
            elif isinstance(stmt, ast.ConstDecl):
                self._const(stmt, ctx)
            elif isinstance(stmt, ast.Sample):
                self._sample(stmt, ctx)
            elif isinstance(stmt, ast.Assign):
                self._assign(stmt, ctx, "assign")
            elif isinstance(stmt, ast.Track):
                self._assign(stmt, ctx, "track")
            elif isinstance(stmt, ast.Plate):
                self._plate(stmt, ctx)
        except _Bad:
            self._poison([stmt])
        except RecursionError:
            self.sink.error("this statement is nested too deeply for pplc to check", stmt.span,
                            hint="split it into several `NAME = EXPR` statements")
            self._poison([stmt])

    def _poison(self, stmts) -> None:
        """Names the failed statements would have defined: later uses of them are not reported again."""
        for st in _walk(stmts):
            name = getattr(st, "name", None)
            if name is not None and name not in self.vars:
                self.failed.add(name)

    def _data(self, s: ast.DataDecl, ctx):
        if ctx:
            self.sink.error("`data` declarations belong at the top level, outside plates", s.span)
            raise _Bad
        if not self._name_ok(s.name, s.name_span):
            raise _Bad
        phys = tuple(self._dim(d) for d in s.type.dims)
        self._check_one_sharded(ir.Axes((), phys), s.type.span, f"data `{s.name}`")
        sharded = next((d for d in phys if self._is_sharded(d)), None)
        self._define(self._var(s, s.name, "data", s.type.dtype, (), phys, sharded_dim=sharded), s.name_span)

    def _const(self, s: ast.ConstDecl, ctx):
        if ctx:
            self.sink.error("`const` declarations belong at the top level, outside plates", s.span)
            raise _Bad
        if not self._name_ok(s.name, s.name_span):
            raise _Bad
        if s.name in self.dims and self.dims[s.name].source == "data":
            self.sink.error(f"`{s.name}` is used as a dim (at {self.dim_first_use.get(s.name, self.dims[s.name].span)}) "
                            f"before this const gives its size", s.name_span,
                            hint=f"move `const {s.name} = ...` above its first use")
            raise _Bad
        value = self._const_value(s.value, s.name)
        if s.name in self.const_overrides:  # `--const NAME=VALUE` on the command line
            value = self.const_overrides.pop(s.name)
            if isinstance(value, float) and not abs(value) <= REAL_MAX:
                self.sink.error(f"--const {s.name}={value}: a const must be a finite number", s.name_span)
                raise _Bad
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_MAX:
            self.sink.error(f"const `{s.name}` is {value}, larger than the largest int ({INT_MAX})", s.value.span,
                            hint="ints are 32-bit on the device; for a large real value write a real, e.g. `1e10`")
            raise _Bad
        dtype = "int" if isinstance(value, int) and not isinstance(value, bool) else "real"
        self._define(self._var(s, s.name, "const", dtype, (), (), const_value=value), s.name_span)

    def _const_value(self, e: ast.Expr, cname: str):
        """The value of a const's expression: numbers, other consts, + - * / ** and unary minus."""
        hint = f"a const is a number, another const, or arithmetic on them; for a value computed from data " \
               f"or random variables write `{cname} = EXPR` (no `const`)"
        if isinstance(e, ast.Num):
            return self._literal(e)
        if isinstance(e, ast.Name):
            var = self.vars.get(e.id)
            if var is not None and var.kind == "const":
                return var.const_value
            if var is None:
                self._name(e, ())  # unknown, or defined later: reported there
                raise _Bad
            self.sink.error(f"const `{cname}` is not constant: `{e.id}` is {KIND_WORDS.get(var.kind, var.kind)}",
                            e.span, hint=hint)
            raise _Bad
        if isinstance(e, ast.Neg):
            return -self._const_value(e.operand, cname)
        if isinstance(e, ast.BinOp) and e.op in ARITH:
            a, b = self._const_value(e.left, cname), self._const_value(e.right, cname)
            return self._const_arith(e, a, b, cname)
        what = {ast.Call: "a function call", ast.Index: "an index", ast.Bool: "a bool", ast.Attr: "`.T`"}.get(
            type(e), "this operation")
        if isinstance(e, ast.Call):
            what = f"a call of `{e.func}`"
        elif isinstance(e, ast.BinOp):
            what = f"`{e.op}`"
        self.sink.error(f"const `{cname}` is not constant: {what} is not allowed in a const", e.span, hint=hint)
        raise _Bad

    def _const_arith(self, e: ast.BinOp, a, b, cname: str):
        def bad(msg):
            self.sink.error(f"const `{cname}`: {msg}", e.span)
            raise _Bad
        if e.op == "/" and b == 0:
            sp = e.right.span
            text = self.source.line(sp.line)[sp.col - 1:sp.end_col - 1] if sp.line == sp.end_line else "the divisor"
            self.sink.error(f"const `{cname}` divides by zero: `{text.strip('()')}` is 0", e.span)
            raise _Bad
        if e.op == "**":
            if a == 0 and b < 0:
                bad("zero to a negative power")
            if a < 0 and isinstance(b, float) and not b.is_integer():
                bad(f"a negative number to a fractional power, ({a}) ** {b}, is not a real number")
            if abs(a) > 1 and b * math.log2(abs(a)) > 128:
                bad(f"{a} ** {b} is too large")
        try:
            r = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                 "**": lambda: a ** b}[e.op]()
        except (OverflowError, ZeroDivisionError, ValueError):
            bad(f"the value of `{e.op}` is not a finite number")
        if isinstance(r, float) and not abs(r) <= REAL_MAX:
            bad("the value is too large for a real (the largest is about 3.4e38)")
        if isinstance(r, int) and abs(r) > 2**127:
            bad("the value is too large")
        return r

    def _literal(self, e: ast.Num):
        """A number literal, checked against the device's int32 and float32 ranges."""
        text = self.source.line(e.span.line)[e.span.col - 1:e.span.end_col - 1] if e.span.line == e.span.end_line \
            else str(e.value)
        if e.is_int and e.value > INT_MAX:
            self.sink.error(f"the integer {text} is larger than the largest int ({INT_MAX})", e.span,
                            hint="ints are 32-bit on the device; for a large real value write a real, e.g. `1e10`")
            raise _Bad
        if not e.is_int and not abs(e.value) <= REAL_MAX:
            self.sink.error(f"the number {text} is too large for a real (the largest is about 3.4e38)", e.span)
            raise _Bad
        return e.value

    def _plate(self, s: ast.Plate, ctx):
        bad = False
        if s.dim in (p.dim for p in ctx):
            outer = next(p for p in ctx if p.dim == s.dim)
            self.sink.error(f"plate `{s.dim}` is already open here (at {outer.span})", s.dim_span,
                            hint="a plate over a dim cannot be nested in a plate over the same dim")
            bad = True
        if s.sharded and any(p.sharded for p in ctx):
            outer = next(p for p in ctx if p.sharded)
            self.sink.error(f"sharded plate `{s.dim}` inside sharded plate `{outer.dim}`: only one plate can be "
                            "split across devices at a time", s.dim_span,
                            notes=(f"`{outer.dim}` is sharded at {outer.span}",),
                            hint=f"drop `sharded over devices` from one of them")
            bad = True
        if s.dim in self.sharded and not s.sharded:
            self.sink.error(f"plate `{s.dim}` is sharded at {self.sharded[s.dim]} but not here; a dim is split "
                            "across devices everywhere or nowhere", s.dim_span,
                            hint="add `sharded over devices` here too")
            bad = True
        if s.dim not in self.dims and s.dim in self.failed:
            bad = True  # its declaration had an error, reported there
        elif s.dim not in self.dims and s.dim in self.vars and self.vars[s.dim].kind != "const" and not (
                self.vars[s.dim].kind == "data" and self.vars[s.dim].dtype == "int" and not self.vars[s.dim].phys):
            self._not_a_dim(s.dim, self.vars[s.dim], s.dim_span)
            bad = True
        elif s.dim not in self.dims and s.dim not in self.vars:
            hint = did_you_mean(s.dim, [d for d in self.dims if not d.isdigit()])
            self.sink.error(f"plate over unknown dim `{s.dim}`: no data declared above has a dim `{s.dim}`",
                            s.dim_span, hint=hint or f"declare the data first (`data y: real[{s.dim}]`), or give the "
                            f"size: `const {s.dim} = 10`")
            bad = True
        elif s.dim not in self.dims:
            self._dim(ast.Dim(s.dim, None, s.dim_span))
        if bad:
            self._poison(s.body)
            return
        plate = ir.Plate(s.dim, s.sharded, s.dim_span)
        self.plates.append(plate)
        for inner in s.body:
            self._stmt(inner, ctx + (plate,))

    def _assign(self, s, ctx, what):
        if not self._name_ok(s.name, s.name_span):
            raise _Bad
        value = self.expr(s.value, ctx)
        if what == "track":
            kind = "track"
        else:
            kind = "deterministic" if value.latent else "transformed"
        plates = tuple(p.dim for p in ctx)
        sharded = next((d for d in value.axes.all if self._is_sharded(d)), None)
        self._define(self._var(s, s.name, kind, value.dtype, plates, value.axes.all, value=value,
                               sharded_dim=sharded, latent=value.latent), s.name_span)

    def _sample(self, s: ast.Sample, ctx):
        plates = tuple(p.dim for p in ctx)
        if keyword.iskeyword(s.name):
            self.sink.error(f"`{s.name}` is a Python keyword, and TFP cannot name a random variable `{s.name}`",
                            s.name_span, hint=f"rename it, e.g. `{s.name}_`" + (
                                " (in the data too)" if s.name in self.vars else "")
                            + "; data, consts and computed quantities may keep such names")
            raise _Bad
        existing = self.vars.get(s.name)
        if existing is not None and existing.kind not in ("data", "transformed"):
            if existing.kind == "deterministic":
                self.sink.error(f"`{s.name}` is a deterministic quantity (defined at {existing.span}); only data "
                                "or a new random variable can follow `~`", s.name_span,
                                hint="give the random variable a new name")
            else:
                self.sink.error(f"`{s.name}` is already defined (at {existing.span})", s.name_span)
            raise _Bad
        if existing is not None and existing.kind == "transformed":
            self.sink.error(f"`{s.name}` is computed from data (at {existing.span}); this version observes "
                            "declared data only", s.name_span,
                            hint="observe the data itself with the matching distribution, e.g. `y ~ LogNormal(m, s)` "
                                 "for `log(y) ~ Normal(m, s)`, or compute the values before sampling and pass "
                                 "them as data")
            raise _Bad
        if existing is None and not self._name_ok(s.name, s.name_span):
            raise _Bad
        dist = self._dist(s.dist, ctx)
        spec = dist.spec
        if existing is not None:  # observed
            if s.type is not None:
                self.sink.error(f"`{s.name}` is data (declared at {existing.span}); its type is already known",
                                s.type.span, hint=f"write `{s.name} ~ ...`")
                raise _Bad
            view = self._view(existing, ctx)
            missing = [d for d in plates if d not in view.plates]
            if missing:
                self.sink.error(f"`{s.name}` is observed inside plate `{missing[0]}` but has no dim `{missing[0]}` "
                                f"(it {has_shape(existing.phys)})", s.name_span,
                                hint=f"observe it outside the plate, or declare it with the dim `{missing[0]}`")
                raise _Bad
            if spec.discrete and existing.dtype == "real":
                self.sink.error(f"{spec.name} observes integers, but `{s.name}` is declared real "
                                f"(at {existing.span})", s.name_span,
                                hint=f"declare it `data {s.name}: int[...]`")
                raise _Bad
            if not spec.discrete and existing.dtype == "bool":
                self.sink.error(f"{spec.name} is continuous, but `{s.name}` is declared bool", s.name_span,
                                hint=f"observe a bool with Bernoulli, or declare `data {s.name}: real[...]`")
                raise _Bad
            item = view.item
            self._match_batch(dist, item, s.name, s.dist.span, plates)
            phys = plates + item
            self._check_one_sharded(ir.Axes(plates, item), s.span, f"`{s.name}`")
            sharded = next((d for d in phys if self._is_sharded(d)), None)
            var = self._var(s, s.name, "observed", existing.dtype, plates, phys, dist=dist, support=spec.support,
                            sharded_dim=sharded)
            # The observed site replaces the data entry in order; the data stays as it was declared.
            self.order.append(var)
            return
        if spec.discrete:
            self.sink.error(f"`{s.name}` would be a discrete latent variable ({spec.name}); HMC and NUTS sample "
                            "continuous variables only", s.dist.span,
                            hint=f"declare `data {s.name}: int` to observe it, or sum it out of the model")
            raise _Bad
        if s.type is not None:
            if s.type.dtype != "real":
                self.sink.error(f"latent `{s.name}` must be real (it is declared {s.type.dtype})", s.type.span)
                raise _Bad
            item = tuple(self._dim(d) for d in s.type.dims)
            in_ctx = [d for d in item if d in plates]
            if in_ctx:
                self.sink.error(f"`{s.name}` is declared inside plate `{in_ctx[0]}` and already gets dim "
                                f"`{in_ctx[0]}` from it; give the shape of one item", s.type.span)
                raise _Bad
            self._match_batch(dist, item, s.name, s.dist.span, plates)
        else:
            item = dist.batch_item + self._event_dims(dist)
        phys = plates + item
        self._check_one_sharded(ir.Axes(plates, item), s.span, f"`{s.name}`")
        if spec.event_rank and any(self._is_sharded(d) for d in item[len(item) - spec.event_rank:]):
            self.sink.error(f"the event dim of {spec.name} cannot be sharded", s.span)
            raise _Bad
        sharded = next((d for d in phys if self._is_sharded(d)), None)
        self._define(self._var(s, s.name, "latent", "real", plates, phys, dist=dist, support=spec.support,
                               sharded_dim=sharded, latent=True), s.name_span)

    def _event_dims(self, dist: ir.DistCall) -> tuple[str, ...]:
        spec = dist.spec
        if not spec.event_rank:
            return ()
        for name, e in dist.params:
            if spec.param_event_rank.get(name):
                return e.axes.item[len(e.axes.item) - spec.event_rank:]
        return ()

    def _match_batch(self, dist: ir.DistCall, item: tuple[str, ...], name: str, span: Span, plates=()):
        """The distribution's batch must broadcast to the variable's item shape (less its event dims)."""
        spec = dist.spec
        want = item[:len(item) - spec.event_rank] if spec.event_rank else item
        if spec.event_rank:
            ev = self._event_dims(dist)
            have = item[len(item) - spec.event_rank:]
            if ev and ev != have:
                self.sink.error(f"a draw of {spec.name} has shape [{', '.join(ev)}] (from its parameters) but "
                                f"`{name}` {has_shape(item)}", span)
                raise _Bad
        for pname, e in dist.params:
            r = spec.param_event_rank.get(pname, 0)
            p_item = e.axes.item[:len(e.axes.item) - r] if r else e.axes.item
            if len(p_item) > len(want) or any(a != b and a != "1" for a, b in zip(reversed(p_item), reversed(want))):
                full = e.axes.item
                inside = (f" (one item of plate{'s' if len(plates) > 1 else ''} "
                          f"{', '.join(f'`{p}`' for p in plates)})") if plates else ""
                self.sink.error(f"{spec.name} {pname} {has_shape(full)} but `{name}` {has_shape(item)}{inside}",
                                dict(dist.param_spans).get(pname, span),
                                hint="the parameters must broadcast to the variable's shape"
                                     + (": inside a plate, both are seen one plate item at a time" if plates else ""))
                raise _Bad

    def _dist(self, e: ast.Expr, ctx) -> ir.DistCall:
        if not isinstance(e, ast.Call):
            self.sink.error("expected a distribution after `~`, such as `Normal(0, 1)`", e.span)
            raise _Bad
        spec = DISTRIBUTIONS.get(e.func)
        if spec is None:
            hint = did_you_mean(e.func, DISTRIBUTIONS) or "the distributions are " + ", ".join(sorted(DISTRIBUTIONS))
            msg = f"`{e.func}` is a function, not a distribution" if e.func in FUNCTIONS else \
                f"unknown distribution `{e.func}`"
            self.sink.error(msg, e.func_span, hint=hint)
            raise _Bad
        given: dict[str, ast.Expr] = {}
        spans: dict[str, Span] = {}
        if len(e.args) > len(spec.params):
            self.sink.error(f"{spec.name} takes at most {len(spec.params)} positional argument"
                            f"{'s' if len(spec.params) != 1 else ''} ({', '.join(spec.params) or 'none'}), "
                            f"got {len(e.args)}", e.args[len(spec.params)].span,
                            hint=f"{spec.name}({', '.join(spec.params)})")
            raise _Bad
        for pname, a in zip(spec.params, e.args):
            given[pname] = a
            spans[pname] = a.span
        for kw in e.kwargs:
            if kw.name not in spec.params:
                alias = PARAM_ALIASES.get(kw.name)
                if alias in spec.params:
                    hint = f"did you mean `{alias}`? pplc uses TFP's names: {spec.name}({', '.join(spec.params)})"
                else:
                    hint = did_you_mean(kw.name, spec.params) or \
                        f"its parameters are {', '.join(spec.params) or 'none'}: {spec.name}({', '.join(spec.params)})"
                self.sink.error(f"{spec.name} has no parameter `{kw.name}`", kw.span, hint=hint)
                raise _Bad
            if kw.name in given:
                how = "by position and by name" if kw.name in spec.params[:len(e.args)] else "twice by name"
                self.sink.error(f"{spec.name} parameter `{kw.name}` is given twice ({how})", kw.span)
                raise _Bad
            given[kw.name] = kw.value
            spans[kw.name] = kw.span
        missing = [p for p in spec.required if p not in given]
        if missing:
            self.sink.error(f"{spec.name} is missing its parameter{'s' if len(missing) > 1 else ''} "
                            f"{' and '.join(f'`{m}`' for m in missing)}", e.span,
                            hint=f"{spec.name}({', '.join(spec.params)})")
            raise _Bad
        if spec.one_of:
            chosen = [p for p in spec.one_of if p in given]
            if len(chosen) != 1:
                self.sink.error(f"{spec.name} takes exactly one of {' or '.join(f'`{p}`' for p in spec.one_of)}"
                                + (f", not both" if len(chosen) > 1 else ""), e.span,
                                hint=f"give one of them: {spec.name}({spec.one_of[0]} = ...) or "
                                     f"{spec.name}({spec.one_of[1]} = ...)")
                raise _Bad
        names = [p for p in spec.params if p in given]
        params = list(zip(names, self._exprs([given[p] for p in names], ctx)))
        batch, first = (), None
        for pname, pe in params:
            r = spec.param_event_rank.get(pname, 0)
            if r and len(pe.axes.item) < r:
                what = "the categories" if spec.name == "Categorical" else "the event"
                self.sink.error(f"{spec.name} {pname} needs a last dim over {what}, but it is a scalar",
                                spans[pname])
                raise _Bad
            p_item = pe.axes.item[:len(pe.axes.item) - r] if r else pe.axes.item
            batch = self._broadcast(batch, p_item, spans[pname], f"the parameters of {spec.name}",
                                    f"`{first}`", f"`{pname}`")
            first = first or pname
        return ir.DistCall(spec, tuple(params), batch, e.span, tuple(spans.items()))

    # ------------------------------------------------------------------ expressions
    def _view(self, var: ir.Variable, ctx) -> ir.Axes:
        cdims = [p.dim for p in ctx]
        return ir.Axes(tuple(d for d in cdims if d in var.phys), tuple(d for d in var.phys if d not in cdims))

    def _broadcast(self, a, b, span, what, left="the left side", right="the right side"):
        out = []
        for i in range(1, max(len(a), len(b)) + 1):
            x = a[-i] if i <= len(a) else "1"
            y = b[-i] if i <= len(b) else "1"
            if x != y and x != "1" and y != "1":
                self.sink.error(f"shape mismatch in {what}: {left} {has_shape(a)} and {right} {has_shape(b)}; "
                                f"dim `{x}` does not match dim `{y}`", span,
                                hint="shapes line up from their last dim, as in NumPy: each pair of dims must be "
                                     "the same dim (or one of them 1)")
                raise _Bad
            out.append(y if x == "1" else x)
        return tuple(reversed(out))

    def _plates_union(self, ctx, *axes):
        have = set().union(*(set(a.plates) for a in axes))
        return tuple(p.dim for p in ctx if p.dim in have)

    def expr(self, e: ast.Expr, ctx) -> ir.Expr:
        if isinstance(e, ast.Num):
            return ir.Lit(ir.Axes(), "int" if e.is_int else "real", False, self._literal(e))
        if isinstance(e, ast.Bool):
            return ir.Lit(ir.Axes(), "bool", False, e.value)
        if isinstance(e, ast.Name):
            return self._name(e, ctx)
        if isinstance(e, ast.Neg):
            a = self.expr(e.operand, ctx)
            return ir.Elementwise(a.axes, _promote(a.dtype, "int"), a.latent, "neg", (a,))
        if isinstance(e, ast.BinOp):
            return self._binop(e, ctx)
        if isinstance(e, ast.Index):
            return self._index(e, ctx)
        if isinstance(e, ast.Attr):
            v = self.expr(e.value, ctx)
            if e.attr != "T":
                self.sink.error(f"unknown attribute `.{e.attr}`; the only one is `.T` (transpose)", e.span)
                raise _Bad
            if len(v.axes.item) != 2:
                self.sink.error(f"`.T` transposes a matrix, but this value {has_shape(v.axes.item)}", e.span)
                raise _Bad
            return ir.Transpose(ir.Axes(v.axes.plates, v.axes.item[::-1]), v.dtype, v.latent, v)
        if isinstance(e, ast.Call):
            return self._call(e, ctx)
        raise AssertionError(e)

    def _name(self, e: ast.Name, ctx) -> ir.Expr:
        var = self.vars.get(e.id)
        if var is None and e.id in self.failed:
            raise _Bad  # its definition had an error, reported there
        if var is None:
            later = self._defined_later(e.id)
            if later:
                self.sink.error(f"`{e.id}` is used before it is defined (at {later})", e.span,
                                hint="move its definition above this line")
            elif e.id in self.dims:
                self.sink.error(f"`{e.id}` is a dim, not a value", e.span)
            elif e.id in DISTRIBUTIONS:
                self.sink.error(f"distribution `{e.id}` can only follow `~`", e.span)
            else:
                self.sink.error(f"unknown name `{e.id}`", e.span,
                                hint=did_you_mean(e.id, [*self.vars, *self.failed]))
            raise _Bad
        if var.kind == "const":
            return ir.Lit(ir.Axes(), var.dtype, False, var.const_value)
        if var.kind == "track":
            self.sink.error(f"`{e.id}` is a tracked quantity; tracked values cannot be used in the model", e.span)
            raise _Bad
        if var.kind == "observed":
            var = next(v for v in reversed(self.order) if v.name == e.id and v.kind == "data")
        view = self._view(var, ctx)
        return ir.Ref(view, var.dtype, var.latent, var.name, var.phys, var.kind)

    def _defined_later(self, name):
        def walk(stmts):
            for s in stmts:
                if isinstance(s, ast.Plate):
                    r = walk(s.body)
                    if r:
                        return r
                elif getattr(s, "name", None) == name:
                    return s.name_span
            return None
        return walk(self.program.statements)

    def _text(self, e: ast.Expr) -> str:
        """The source text of an expression (in parentheses unless it is a name or a call)."""
        sp = e.span
        if sp.line != sp.end_line:
            return "(...)"
        text = self.source.line(sp.line)[sp.col - 1:sp.end_col - 1]
        return text if isinstance(e, (ast.Name, ast.Call, ast.Num, ast.Attr, ast.Index)) else f"({text})"

    def _exprs(self, exprs, ctx) -> list[ir.Expr]:
        """Check each expression; report the errors of all of them (they are independent) before giving up."""
        out, bad = [], False
        for x in exprs:
            try:
                out.append(self.expr(x, ctx))
            except _Bad:
                bad = True
        if bad:
            raise _Bad
        return out

    def _binop(self, e: ast.BinOp, ctx) -> ir.Expr:
        a, b = self._exprs([e.left, e.right], ctx)
        latent = a.latent or b.latent
        if e.op == "@":
            return self._matmul(e, a, b, ctx)
        item = self._broadcast(a.axes.item, b.axes.item, e.span, f"`{e.op}`")
        axes = ir.Axes(self._plates_union(ctx, a.axes, b.axes), item)
        self._check_one_sharded(axes, e.span, "the result of `" + e.op + "`")
        if e.op in COMPARE:
            dtype = "bool"
        elif e.op in ("/", "**"):
            dtype = "real"
        else:
            dtype = _promote(a.dtype, b.dtype, "int")
        return ir.Elementwise(axes, dtype, latent, e.op, (a, b))

    def _matmul(self, e, a, b, ctx):
        ra, rb = len(a.axes.item), len(b.axes.item)
        if ra == 0 or rb == 0 or ra > 2 or rb > 2:
            self.sink.error(f"`@` multiplies vectors and matrices, but the left side {has_shape(a.axes.item)} "
                            f"and the right side {has_shape(b.axes.item)}", e.span,
                            hint="use `*` to multiply by a scalar" if 0 in (ra, rb) else None)
            raise _Bad
        ka, kb = a.axes.item[-1], b.axes.item[0]
        if ka != kb:
            fix = None
            left, right = self._text(e.left), self._text(e.right)
            if ra == 2 and a.axes.item[0] == kb:
                fix = f"transpose the left side: `{left}.T @ {right}`"
            elif rb == 2 and b.axes.item[-1] == ka:
                fix = f"transpose the right side: `{left} @ {right}.T`"
            self.sink.error(f"shape mismatch in `@`: {shape_str(a.axes.item)} @ {shape_str(b.axes.item)} would sum "
                            f"dim `{ka}` of the left side against dim `{kb}` of the right side", e.span,
                            hint=fix or "the last dim of the left side must be the first dim of the right side")
            raise _Bad
        if self._is_sharded(ka):
            self.sink.error(f"`@` would sum over the sharded dim `{ka}` here, outside its plate", e.span,
                            hint=f"write the sum inside `plate {ka}`, where each item is seen one at a time")
            raise _Bad
        item = a.axes.item[:-1] + b.axes.item[1:]
        axes = ir.Axes(self._plates_union(ctx, a.axes, b.axes), item)
        self._check_one_sharded(axes, e.span, "the result of `@`")
        return ir.MatMul(axes, "real", a.latent or b.latent, a, b)

    def _index(self, e: ast.Index, ctx):
        v = self.expr(e.value, ctx)
        for idx in e.indices:
            if not v.axes.item:
                self.sink.error("too many indices: the value is a scalar here", idx.span)
                raise _Bad
            first = v.axes.item[0]
            i = self.expr(idx, ctx)
            if isinstance(i, ir.Lit):
                if i.dtype != "int":
                    self.sink.error("an index must be an integer", idx.span)
                    raise _Bad
                size = self.dims[first].size if first in self.dims else None
                if size is not None and not -size <= i.value < size:
                    self.sink.error(f"index {i.value} is out of range for dim `{first}` of size {size} "
                                    "(indices start at 0)", idx.span)
                    raise _Bad
                if self._is_sharded(first):
                    self.sink.error(f"cannot take one element of the sharded dim `{first}`: each device holds only "
                                    f"its own items of `{first}`", idx.span,
                                    hint=f"keep `{first}` replicated (drop `sharded over devices` from its plate)")
                    raise _Bad
                v = ir.TakeIndex(ir.Axes(v.axes.plates, v.axes.item[1:]), v.dtype, v.latent, v, int(i.value))
                continue
            if i.dtype == "real" or i.latent:
                why = "depends on a random variable" if i.latent else "is real"
                iname = idx.id if isinstance(idx, ast.Name) else "idx"
                self.sink.error(f"an index must be integer data or a whole number, but this one {why}", idx.span,
                                hint=f"declare the index array `data {iname}: int[...]`" if not i.latent else None)
                raise _Bad
            if v.axes.plates:
                self.sink.error("gather from a value that varies over the enclosing plate is not supported",
                                e.span, hint="index a variable declared outside the plate")
                raise _Bad
            if self._is_sharded(first):
                across = next((d for d in i.axes.all if self._is_sharded(d)), None)
                msg = (f"gather across two sharded plates: the index varies over sharded `{across}` and picks "
                       f"items of sharded `{first}`") if across else f"gather from the sharded dim `{first}`"
                self.sink.error(msg + f", but each device holds only its own items of `{first}`", e.span,
                                hint=f"keep `{first}` replicated (drop `sharded over devices` from its plate)")
                raise _Bad
            axes = ir.Axes(i.axes.plates, i.axes.item + v.axes.item[1:])
            self._check_one_sharded(axes, e.span, "the gather")
            v = ir.Gather(axes, v.dtype, v.latent, v, i)
        return v

    def _call(self, e: ast.Call, ctx):
        f = e.func
        if f in DISTRIBUTIONS:
            self.sink.error(f"distribution `{f}` can only follow `~`", e.func_span)
            raise _Bad
        if f not in FUNCTIONS:
            self.sink.error(f"unknown function `{f}`", e.func_span, hint=did_you_mean(f, FUNCTIONS))
            raise _Bad
        if e.kwargs:
            self.sink.error(f"`{f}` takes no keyword arguments", e.kwargs[0].span)
            raise _Bad
        nargs = {"dot": (2, 2), "where": (3, 3)}.get(f, (1, 2) if f in REDUCE_ALL else (1, 1))
        if not nargs[0] <= len(e.args) <= nargs[1]:
            want = str(nargs[0]) if nargs[0] == nargs[1] else f"{nargs[0]} or {nargs[1]}"
            self.sink.error(f"`{f}` takes {want} argument{'s' if nargs[1] > 1 else ''}, got {len(e.args)}", e.span)
            raise _Bad
        if f in REDUCE_ALL and len(e.args) == 2:
            d = e.args[1]
            a = self.expr(e.args[0], ctx)
            if not isinstance(d, ast.Name) or d.id not in a.axes.item:
                self.sink.error(f"the second argument of `{f}` names the dim to reduce, one of "
                                f"{', '.join(f'`{x}`' for x in a.axes.item)}" if a.axes.item else
                                f"`{f}` of a scalar has no dim to reduce", d.span)
                raise _Bad
            return self._reduce(f, a, (d.id,), e)
        args = self._exprs(e.args, ctx)
        a = args[0]
        if f in ELEMENTWISE_FUNCS:
            return ir.Elementwise(a.axes, "real", a.latent, f, (a,))
        if f == "where":
            item = self._broadcast(self._broadcast(args[0].axes.item, args[1].axes.item, e.span, "`where`"),
                                   args[2].axes.item, e.span, "`where`")
            axes = ir.Axes(self._plates_union(ctx, *(x.axes for x in args)), item)
            self._check_one_sharded(axes, e.span, "the result of `where`")
            return ir.Elementwise(axes, _promote(args[1].dtype, args[2].dtype), any(x.latent for x in args), "where",
                                  tuple(args))
        if f in REDUCE_ALL:
            if not a.axes.item:
                return a if f != "mean" else ir.Elementwise(a.axes, "real", a.latent, "+", (a, ir.Lit(ir.Axes(), "real", False, 0.0)))
            return self._reduce(f, a, a.axes.item, e)
        if f == "dot":
            b = args[1]
            if not a.axes.item or not b.axes.item or a.axes.item[-1] != b.axes.item[-1]:
                self.sink.error(f"`dot` needs two values with the same last dim, but the left side "
                                f"{has_shape(a.axes.item)} and the right side {has_shape(b.axes.item)}", e.span)
                raise _Bad
            prod = self._binop_ir("*", a, b, e.span, ctx)
            return self._reduce("sum", prod, (prod.axes.item[-1],), e)
        if not a.axes.item:
            self.sink.error(f"`{f}` works along the last dim, but its argument is a scalar here", e.span)
            raise _Bad
        last = a.axes.item[-1]
        if self._is_sharded(last):
            how = {"logsumexp": f"write `log(sum(exp(...)))`, whose sum is taken across devices",
                   "argmax": f"keep `{last}` replicated (drop `sharded over devices` from its plate)"}.get(
                f, f"keep `{last}` replicated (drop `sharded over devices` from its plate)")
            self.sink.error(f"`{f}` along the sharded dim `{last}` cannot be placed: each device holds only its own "
                            f"items of `{last}`, and pplc combines across devices only sums, means, max and min",
                            e.span, hint=how)
            raise _Bad
        if f in LAST_AXIS_KEEP:
            return ir.LastAxis(a.axes, "real", a.latent, f, a)
        dtype = "int" if f == "argmax" else "real"
        return ir.Reduce(ir.Axes(a.axes.plates, a.axes.item[:-1]), dtype, a.latent, f, a, (last,), None)

    def _binop_ir(self, op, a, b, span, ctx):
        item = self._broadcast(a.axes.item, b.axes.item, span, f"`{op}`")
        axes = ir.Axes(self._plates_union(ctx, a.axes, b.axes), item)
        return ir.Elementwise(axes, _promote(a.dtype, b.dtype, "int"), a.latent or b.latent, op, (a, b))

    def _reduce(self, f, a, dims, e):
        sharded = next((d for d in dims if self._is_sharded(d)), None)
        item = tuple(d for d in a.axes.item if d not in dims)
        dtype = "real" if f == "mean" else a.dtype
        return ir.Reduce(ir.Axes(a.axes.plates, item), dtype, a.latent, f, a, tuple(dims), sharded)


MAX_DEPTH = 150  # of nested operations in one expression (checking and code generation recurse on them)


def _children(e: ast.Expr) -> list[ast.Expr]:
    if isinstance(e, ast.BinOp):
        return [e.left, e.right]
    if isinstance(e, ast.Neg):
        return [e.operand]
    if isinstance(e, ast.Index):
        return [e.value, *e.indices]
    if isinstance(e, ast.Attr):
        return [e.value]
    if isinstance(e, ast.Call):
        return [*e.args, *(k.value for k in e.kwargs)]
    return []


def _depth(e: ast.Expr) -> int:
    """How deeply an expression nests (without recursion: the depth is what is being checked)."""
    best, stack = 0, [(e, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in _children(node))
    return best


def _exprs_of(st: ast.Stmt) -> list[ast.Expr]:
    return [x for x in (getattr(st, "value", None), getattr(st, "dist", None)) if isinstance(x, ast.Expr)]


def _walk(stmts):
    """Every statement, plates' bodies included, in order."""
    for st in stmts:
        yield st
        if isinstance(st, ast.Plate):
            yield from _walk(st.body)


def check(program: ast.Program, source: Source, consts: dict | None = None) -> tuple[ir.Model, list]:
    """Check `program` (with `consts` overriding const values); return the IR and the warnings.
    Raises PPLError with all errors."""
    checker = Checker(program, source, consts)
    if checker.const_overrides:
        for name in checker.const_overrides:
            if not any(isinstance(s, ast.ConstDecl) and s.name == name for s in program.statements):
                hint = did_you_mean(name, [s.name for s in program.statements if isinstance(s, ast.ConstDecl)])
                checker.sink.error(f"--const {name}: the model has no const `{name}`", hint=hint)
        checker.sink.raise_if_errors()
    model = checker.run()
    return model, checker.sink.warnings()
