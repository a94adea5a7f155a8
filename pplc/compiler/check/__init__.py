"""Check a parsed program and build the IR: names in order, dtypes, named-dim shapes, plates, placement."""
from __future__ import annotations

from ...dsl import ast
from ...dsl.diagnostics import DiagnosticSink, did_you_mean
from ...dsl.spans import Source, Span
from .. import ir
from .arguments import ArgumentChecker
from .blocks import BlockChecker
from .dist_args import DistArgChecker
from .dist_functions import DistFunctionChecker
from .enumerate import EnumerationChecker
from .functions import FunctionChecker
from .ode import OdeChecker
from .matrices import MatrixChecker
from .slices import SliceChecker
from .base import MAX_DEPTH, Reported, expressions_of, nesting_depth, walk_statements
from .consts import ConstChecker
from .names import NameChecker
from .placement import PlacementChecker
from .recurrences import RecurrenceChecker
from .shapes import ExpressionChecker
from .statements import StatementChecker


class Checker(StatementChecker, RecurrenceChecker, BlockChecker, FunctionChecker, ConstChecker, DistFunctionChecker, SliceChecker, MatrixChecker,
              ArgumentChecker, OdeChecker, DistArgChecker,
              EnumerationChecker, PlacementChecker, NameChecker, ExpressionChecker):
    """Walks the AST once, in order, building IR variables; collects every independent error.

    Each base class is one concern, in its own module of this package; they share the state set up here."""

    def __init__(self, program: ast.Program, source: Source, consts: dict | None = None):
        self.program = program
        self.source = source
        self.const_overrides = dict(consts or {})
        self.sink = DiagnosticSink(source)
        self.vars: dict[str, ir.Variable] = {}
        self.order: list[ir.Variable] = []
        self.index_checks: dict[tuple[str, str], ir.IndexCheck] = {}  # data used as index arrays, first use each
        self.dims: dict[str, ir.Dim] = {}
        self.plates: list[ir.Plate] = []
        self.sharded: dict[str, Span] = {}  # dim -> where a plate shards it
        self.dim_first_use: dict[str, Span] = {}
        # Names whose statement had an error (already reported): uses of them are not errors again.
        self.failed: set[str] = set()
        self.functions: dict[str, ast.FunctionDef] = {}  # user functions, by name
        self.inlining: list[str] = []  # the user functions being expanded (to refuse recursion)
        self.data_decl_dims = {d.name for st in walk_statements(program.statements) if isinstance(st, ast.DataDecl)
                               for d in st.type.dims if d.name}

    def run(self) -> ir.Model:
        self._collect_plates(self.program.statements)
        for stmt in self.program.statements:
            self._stmt(stmt, ())
        for name, dim in self.dims.items():
            # (`data_decl_dims`: a data declaration with an error has the dim too)
            in_data = any(name in v.phys for v in self.order if v.kind == ir.Kind.DATA)
            if dim.source == "data" and not in_data and name not in self.data_decl_dims:
                self.sink.error(f"the size of dim `{name}` is unknown: no data array has it, and there is "
                                f"no `const {name}` or `data {name}: int`", self.dim_first_use.get(name, dim.span),
                                hint=did_you_mean(name, [d for d in self.dims if not d.isdigit()])
                                or f"give its size: `const {name} = 10`, or declare data with this dim")
        self._sum_out()  # discrete latents: their terms as one marginal per plate item (check/enumerate.py)
        self._check_cross_device_reductions(self.order)
        self.sink.raise_if_errors()
        return ir.Model(self.source.filename, tuple(self.order), tuple(self.dims.values()), tuple(self.plates),
                        tuple(self.index_checks.values()))

    def _stmt(self, stmt: ast.Stmt, ctx: tuple[ir.Plate, ...]) -> None:
        try:
            ctx = self._enumeration_context(stmt, ctx)  # a summed-out discrete latent's values: one more plate
            for e in expressions_of(stmt):
                depth = nesting_depth(e)
                if depth > MAX_DEPTH:
                    self.sink.error(f"this expression is nested {depth} levels deep; pplc handles at most {MAX_DEPTH}",
                                    e.span, hint="split it into several `NAME = EXPR` statements")
                    raise Reported
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
            elif isinstance(stmt, ast.ParamDecl):
                self._param(stmt, ctx)
            elif isinstance(stmt, ast.Target):
                self._target(stmt, ctx)
            elif isinstance(stmt, ast.FunctionDef):
                self._function_def(stmt, ctx)
            elif isinstance(stmt, ast.Plate):
                self._plate(stmt, ctx)
            elif isinstance(stmt, ast.Recur):
                self._recur(stmt, ctx)
        except Reported:
            self._poison([stmt])
        except RecursionError:
            self.sink.error("this statement is nested too deeply for pplc to check", stmt.span,
                            hint="split it into several `NAME = EXPR` statements")
            self._poison([stmt])

    def _poison(self, stmts) -> None:
        """Names the failed statements would have defined: later uses of them are not reported again."""
        for st in walk_statements(stmts):
            name = getattr(st, "name", None)
            if name is not None and name not in self.vars:
                self.failed.add(name)


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
