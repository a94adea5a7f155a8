"""`recur t in T { ... }`: sequences over a dim by their first items and a recurrence, typed like plate items."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...dsl import ast
from .. import ir
from .base import MAX_DEPTH, Reported, has_shape, nesting_depth
from .shapes import promote


@dataclass
class RecurScope:
    """What the checker knows inside a `recur` block while it types one of its lines."""

    index: str
    dim: str
    start: int  # the number of first items of each sequence
    names: tuple[str, ...]  # the block's sequences
    general_line: dict[str, int]  # each sequence's general line (for messages)
    phase: str = "first"  # "first" (the lines `x[0] = ...`) or "step" (the lines `x[t] = ...`)
    firsts: dict = field(default_factory=dict)  # (name, at) -> the typed first item given above
    seq: dict = field(default_factory=dict)  # name -> (axes, dtype, latent) of one item (step phase)
    done: set = field(default_factory=set)  # the sequences whose general line is above (step phase)
    current: str = ""  # the sequence of the line being typed


class RecurrenceChecker:
    """Types a `recur` block: first items, then the general items with `x[t-k]` of the block's sequences and
    `y[t-j]` of values over the block's dim; each sequence becomes a variable of dims [plates, T, item]."""

    recur: RecurScope | None = None  # the block being typed

    def _recur(self, s: ast.Recur, ctx):
        try:
            self._recur_block(s, ctx)
        except Reported:
            self.failed.update(x.name for x in s.lines)  # later uses are not errors again
            raise
        finally:
            self.recur = None

    # --- the block
    def _recur_dim(self, s: ast.Recur, ctx) -> str:
        if s.dim in (p.dim for p in ctx):
            self.sink.error(f"`recur {s.index} in {s.dim}` inside `plate {s.dim}`: the plate sees one item of "
                            f"`{s.dim}` at a time", s.dim_span, hint="write the recurrence outside that plate")
            raise Reported
        dim = self._dim(ast.Dim(s.dim, None, s.dim_span))
        if self._is_sharded(dim):
            self.sink.error(f"a recurrence cannot run over the sharded dim `{dim}`: each device holds only its own "
                            f"items of `{dim}`, and item t needs item t-1", s.dim_span,
                            hint=f"keep `{dim}` replicated, and shard a plate over the series instead: "
                                 f"`plate series sharded over devices {{ recur {s.index} in {dim} {{ ... }} }}`")
            raise Reported
        return dim

    def _recur_lines(self, s: ast.Recur):
        """The first-item lines and general line of each sequence, checked for form; the number of first items."""
        firsts: dict[str, list[ast.RecurLine]] = {}
        general: dict[str, ast.RecurLine] = {}
        for x in s.lines:
            for e in (x.index, x.value):
                if nesting_depth(e) > MAX_DEPTH:
                    self.sink.error(f"this expression is nested more than {MAX_DEPTH} levels deep", e.span,
                                    hint="split it into several `NAME = EXPR` statements above the block")
                    raise Reported
            if isinstance(x.index, ast.Num) and x.index.is_int:
                firsts.setdefault(x.name, []).append(x)
            elif isinstance(x.index, ast.Name) and x.index.id == s.index:
                if x.name in general:
                    self.sink.error(f"`{x.name}[{s.index}]` is given twice (also at line {general[x.name].span.line})",
                                    x.span)
                    raise Reported
                general[x.name] = x
            else:
                self.sink.error(f"a line of `recur {s.index} in {s.dim}` gives a first item (`{x.name}[0]`, "
                                f"`{x.name}[1]`, ...) or the general item `{x.name}[{s.index}]`", x.index.span)
                raise Reported
        names = tuple(dict.fromkeys(x.name for x in s.lines))
        for name in names:
            where = (firsts.get(name) or [general.get(name)])[0]
            if not self._name_ok(name, where.name_span):
                raise Reported
            if name in self.vars or name in self.functions:
                at = self.vars[name].span if name in self.vars else self.functions[name].span
                self.sink.error(f"`{name}` is already defined (at {at})", where.name_span,
                                hint="a `recur` block defines new names: give this sequence another name")
                raise Reported
            if name not in general:
                self.sink.error(f"`{name}` has first items but no general item `{name}[{s.index}] = ...`",
                                where.name_span)
                raise Reported
            if name not in firsts:
                self.sink.error(f"`{name}[{s.index}]` needs the first item it starts from: `{name}[0] = ...`",
                                general[name].name_span, hint="a recurrence starts from given items")
                raise Reported
            for at, x in enumerate(firsts[name]):
                if x.index.value != at:
                    self.sink.error(f"first items are given in order from 0 (`{name}[0]`, `{name}[1]`, ...), "
                                    f"but here `{name}[{x.index.value}]` comes where `{name}[{at}]` would",
                                    x.index.span)
                    raise Reported
        counts = {name: len(firsts[name]) for name in names}
        if len(set(counts.values())) > 1:
            (a, na), (b, nb) = sorted(counts.items(), key=lambda kv: kv[1])[::len(counts) - 1]
            self.sink.error(f"the sequences of one `recur` block start from the same number of first items, but "
                            f"`{a}` gives {na} and `{b}` gives {nb}", firsts[b][-1].span,
                            hint="give each sequence as many first items as the longest lag of the block needs")
            raise Reported
        return names, firsts, general, next(iter(counts.values()))

    def _recur_block(self, s: ast.Recur, ctx):
        plates = tuple(p.dim for p in ctx)
        dim = self._recur_dim(s, ctx)
        if s.index in self.vars or s.index in self.functions:
            self.sink.error(f"`{s.index}` is already defined; the index of a recurrence is a new name", s.index_span,
                            hint=f"e.g. `recur t in {s.dim}`")
            raise Reported
        names, firsts, general, start = self._recur_lines(s)
        size = self.dims[dim].size
        if size is not None and start >= size:
            self.sink.error(f"`{s.dim}` has {size} items, and the block gives {start} first items: nothing is left "
                            "for the recurrence", s.dim_span)
            raise Reported
        sc = RecurScope(s.index, dim, start, names, {n: general[n].span.line for n in names})
        self.recur = sc
        # first items, in line order: each may use the first items given above it
        first_ir = []
        for x in s.lines:
            if isinstance(x.index, ast.Num):
                sc.current = x.name
                v = self.expr(x.value, ctx)
                sc.firsts[(x.name, x.index.value)] = v
                first_ir.append((x.name, x.index.value, v, x.span.line))
        items, dtypes, latent = {}, {}, {}
        for name in names:
            vs = [sc.firsts[(name, at)] for at in range(start)]
            item = vs[0].axes.item
            for x, v in zip(firsts[name][1:], vs[1:]):
                item = self._broadcast(item, v.axes.item, x.value.span, f"the first items of `{name}`",
                                       f"`{name}[0]`", f"`{name}[{x.index.value}]`")
            items[name], dtypes[name] = item, promote(*(v.dtype for v in vs))
            latent[name] = any(v.latent for v in vs)
        # the general items, in line order, until the sequences' dtypes settle (an int first item, a real step)
        sc.phase = "step"
        for _ in range(4):
            everything_latent = any(latent.values())
            sc.seq = {n: (ir.Axes(plates, items[n]), dtypes[n], everything_latent) for n in names}
            sc.done = set()
            steps = []
            for x in s.lines:
                if general.get(x.name) is not x:
                    continue
                sc.current = x.name
                v = self.expr(x.value, ctx)
                self._recur_item_shape(s, x, v, items[x.name])
                dtypes[x.name] = promote(dtypes[x.name], v.dtype)
                latent[x.name] = latent[x.name] or v.latent
                sc.done.add(x.name)
                steps.append((x.name, v, x.span.line))
            if all(sc.seq[n][1:] == (dtypes[n], any(latent.values())) for n in names):
                break
        is_latent = any(latent.values())
        lines = [(s.span.line, self.source.line(s.span.line).strip())]
        lines += [(x.span.line, self.source.line(x.span.line).strip()) for x in s.lines]
        order = tuple(n for n in (x.name for x in s.lines if general.get(x.name) is x))
        block = ir.RecurBlock(s.index, dim, order, start, tuple(first_ir), tuple(steps),
                              tuple(len(items[n]) for n in order), tuple(lines))
        args = tuple(v for _, _, v, _ in first_ir) + tuple(v for _, v, _ in steps)
        kind = ir.Kind.DETERMINISTIC if is_latent else ir.Kind.TRANSFORMED
        for name in order:
            axes = ir.Axes(plates, (dim,) + items[name])
            self._check_one_sharded(axes, general[name].span, f"`{name}`")
            sharded = next((d for d in axes.all if self._is_sharded(d)), None)
            value = ir.Recurrence(axes, dtypes[name], is_latent, block, name, args)
            self._define(self._var(general[name], name, kind, dtypes[name], plates, axes.all, value=value,
                                   sharded_dim=sharded, latent=is_latent), general[name].name_span)

    def _recur_item_shape(self, s: ast.Recur, x: ast.RecurLine, v: ir.Expr, item):
        """The general item of a sequence has the shape of its first items (or broadcasts to it)."""
        out = self._broadcast(item, v.axes.item, x.value.span, f"`{x.name}[{s.index}]`",
                              f"`{x.name}[0]`", f"`{x.name}[{s.index}]`")
        if out != item:
            hint = None
            if self.recur.dim in v.axes.item:
                hint = (f"a value over `{self.recur.dim}` is used one item at a time inside the block: "
                        f"`y[{s.index}]`, `y[{s.index}-1]`")
            self.sink.error(f"`{x.name}[{s.index}]` {has_shape(v.axes.item)}, but `{x.name}[0]` "
                            f"{has_shape(item)}: every item of a sequence has one shape", x.value.span, hint=hint)
            raise Reported

    # --- names and subscripts inside the block (called by `expr` first)
    def _recur_ref(self, e: ast.Expr, ctx) -> ir.Expr | None:
        """`x[t-k]`, `x[0]` of the block's sequences and `y[t-j]` of values over its dim, typed; None for other
        expressions (typed as everywhere)."""
        sc = self.recur
        t = sc.index
        if isinstance(e, ast.Name):
            if e.id == t:
                self.sink.error(f"`{t}` is the index of the recurrence: it is used in subscripts only, "
                                f"`y[{t}]`, `y[{t}-1]`, `{sc.current}[{t}-1]`", e.span)
                raise Reported
            if e.id in sc.names:
                self.sink.error(f"inside its `recur` block, `{e.id}` is used one item at a time: "
                                f"`{e.id}[{t}-1]` (an earlier item), or `{e.id}[{t}]` below the line that gives it",
                                e.span)
                raise Reported
            return None
        if not isinstance(e, ast.Index) or isinstance(e.indices[0], ast.Slice):
            return None
        first = e.indices[0]
        seq = e.value.id if isinstance(e.value, ast.Name) and e.value.id in sc.names else None
        lag = self._recur_lag(first, ctx)
        if lag is None and seq is None:
            return None
        if len(e.indices) > 1:  # `X[t, 0]` is `X[t][0]`
            return self.expr(ast.Index(e.span, ast.Index(e.span, e.value, (first,)), e.indices[1:]), ctx)
        if sc.phase == "first":
            if lag is not None:
                self.sink.error(f"a first item is given before the recurrence starts: `{t}` has no value here",
                                first.span, hint=f"use items by number here (`y[0]`, `{seq or sc.current}[0]`)")
                raise Reported
            i = self.expr(first, ctx)
            if not isinstance(i, ir.Lit) or i.dtype != "int" or (seq, i.value) not in sc.firsts:
                given = ", ".join(f"`{seq}[{a}]`" for (n, a) in sc.firsts if n == seq)
                self.sink.error(f"a first item may use the first items given above it ({given or 'none of `' + seq + '` yet'})",
                                e.span)
                raise Reported
            v = sc.firsts[(seq, i.value)]
            return ir.RecurItem(v.axes, v.dtype, v.latent, seq, None, i.value)
        if seq is not None:
            if lag is None:
                self.sink.error(f"inside the general lines, the items of `{seq}` are `{seq}[{t}]` and "
                                f"`{seq}[{t}-k]`", first.span)
                raise Reported
            if lag > sc.start:
                self._too_far(e, seq, lag)
            if lag == 0 and seq not in sc.done:
                where = ("is the line being defined" if seq == sc.current else
                         f"is given below (line {sc.general_line[seq]})")
                self.sink.error(f"`{seq}[{t}]` {where}: a line uses the current item of sequences given above it, "
                                f"and earlier items (`{seq}[{t}-1]`) of any", e.span)
                raise Reported
            axes, dtype, latent = sc.seq[seq]
            return ir.RecurItem(axes, dtype, latent, seq, lag)
        if lag > sc.start:
            self._too_far(e, None, lag)
        v = self.expr(e.value, ctx)
        if not v.axes.item or v.axes.item[0] != sc.dim:
            self.sink.error(f"`{t}` goes over the items of dim `{sc.dim}`, but this value "
                            f"{has_shape(v.axes.item)}" + (" here" if v.axes.plates else ""), e.value.span,
                            hint=f"index a value whose first dim is `{sc.dim}`")
            raise Reported
        return ir.AtStep(ir.Axes(v.axes.plates, v.axes.item[1:]), v.dtype, v.latent, v, lag)

    def _recur_lag(self, i: ast.Expr, ctx) -> int | None:
        """k for a subscript `t - k` (0 for `t`), None for one that is not of that form."""
        t = self.recur.index
        if isinstance(i, ast.Name) and i.id == t:
            return 0
        if not (isinstance(i, ast.BinOp) and i.op in "+-" and isinstance(i.left, ast.Name) and i.left.id == t):
            return None
        k = self.expr(i.right, ctx)
        if not isinstance(k, ir.Lit) or k.dtype != "int" or k.value < 0:
            self.sink.error(f"the lag in `[{t}-k]` is a whole number, a literal or a const", i.right.span)
            raise Reported
        if i.op == "+" and k.value:
            self.sink.error(f"`[{t}+{k.value}]` is a later item: a recurrence's item `{t}` is computed from the items "
                            f"up to `{t}` only", i.span, hint=f"shift the other way: write the line for the item "
                            f"`{t}` in terms of `[{t}-{k.value}]`")
            raise Reported
        return int(k.value)

    def _too_far(self, e: ast.Index, seq: str | None, lag: int):
        sc = self.recur
        given = " ".join(f"`{n}[{a}]`" for n in sc.names[:1] for a in range(sc.start))
        self.sink.error(f"`[{sc.index}-{lag}]` reaches {lag} items back, but the block gives {sc.start} first "
                        f"item{'s' * (sc.start > 1)} ({given}): its general lines start at {sc.index} = {sc.start}, "
                        f"where item {sc.start - lag} would be needed", e.span,
                        hint=f"give {lag} first items of each sequence (`{seq or sc.current}[0]` to "
                             f"`{seq or sc.current}[{lag - 1}]`)")
        raise Reported

