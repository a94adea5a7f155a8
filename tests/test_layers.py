"""The house rules of pplc's source: the import contracts of pyproject.toml, no import cycles, short modules."""
import ast
import os
import subprocess
import sys

import grimp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PPLC = os.path.join(ROOT, "pplc")
MAX_LINES = 400
LONGER = {}  # module path (relative to pplc/) -> why it may be longer than MAX_LINES; keep it empty


def test_import_contracts():
    """`lint-imports` keeps every contract of [tool.importlinter]: the layers cli > api > studies > runtime >
    compiler > dsl > grammar > _version, nothing below the API imports the root package `pplc`, the runtime
    never imports the checker, lowering or code generation, and no cycles among the packages of a package.
    Imports inside functions count as much as those at the top of a module."""
    r = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                        "sys.exit(lint_imports(no_cache=True))"], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    report = r.stdout + r.stderr
    assert r.returncode == 0, report[report.find("Contracts"):] if "Contracts" in report else report
    assert "0 broken" in report and "Contracts: 4 kept" in report, report


def _cycles(graph) -> list[list[str]]:
    """The import cycles between modules (strongly connected components of more than one module, or a
    module importing itself), each sorted; Tarjan's algorithm, iterative."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start), on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child), on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    scc = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        scc.append(m)
                        if m == node:
                            break
                    if len(scc) > 1 or node in graph.find_modules_directly_imported_by(node):
                        out.append(sorted(scc))
    return sorted(out)


def test_no_import_cycles_between_modules():
    """No module reaches itself through imports, a package's own __init__ included (which the
    acyclic_siblings contract, looking at siblings only, does not see)."""
    sys.path.insert(0, ROOT)
    try:
        graph = grimp.build_graph("pplc", cache_dir=None)
    finally:
        sys.path.remove(ROOT)
    cycles = _cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(_a_cycle(graph, c)) for c in cycles)


def _a_cycle(graph, scc: list[str]) -> tuple[str, ...]:
    """One cycle through the first module of a strongly connected component, e.g. (a, b, c, a)."""
    first = scc[0]
    nxt = min(m for m in graph.find_modules_directly_imported_by(first) if m in scc)
    return (first,) + (graph.find_shortest_chain(nxt, first) or (nxt, first))


def test_cycle_finder_finds_cycles():
    """The cycle finder above on a small graph: a cycle through a package's __init__ and a self-import count."""
    g = grimp.ImportGraph()
    for m in ["p", "p.a", "p.b", "p.c", "p.d"]:
        g.add_module(m)
    g.add_import(importer="p", imported="p.a")
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p")
    g.add_import(importer="p.c", imported="p.a")
    g.add_import(importer="p.d", imported="p.d")
    assert _cycles(g) == [["p", "p.a", "p.b"], ["p.d"]]


def _modules():
    for dirpath, _, files in os.walk(PPLC):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                yield os.path.relpath(path, PPLC), open(path, encoding="utf-8").read()


def test_modules_are_short():
    """No module in pplc/ is longer than 400 lines (one idea per module)."""
    long = {rel: text.count("\n") for rel, text in _modules() if text.count("\n") > MAX_LINES and rel not in LONGER}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_modules_start_with_a_docstring():
    """Every module in pplc/ says in its first line what it is."""
    missing = [rel for rel, text in _modules() if not (ast.get_docstring(ast.parse(text)) or "").strip()]
    assert missing == []
