"""Golden tests of the generated code: `pplc compile` output equals tests/golden/good/<name>.py, byte for byte.

The models are the three examples (examples/<name>.ppl) and the extra models beside their golden files
(tests/golden/good/<name>.ppl). After an intended change to code generation, rewrite the files with

    PPLC_REGEN_GOLDEN=1 pytest tests/test_golden_codegen.py

and read the diff: it is the change users will see in their generated programs.
"""
import difflib
import os

import pytest

from pplc.runtime import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden", "good")
EXAMPLES = ["eight_schools", "mnist_logreg", "movielens_mf"]
EXTRA = sorted(f[:-4] for f in os.listdir(GOLDEN) if f.endswith(".ppl"))
MODELS = {**{n: os.path.join("examples", f"{n}.ppl") for n in EXAMPLES},
          **{n: os.path.join("tests", "golden", "good", f"{n}.ppl") for n in EXTRA}}
REGEN = bool(os.environ.get("PPLC_REGEN_GOLDEN"))
MAX_LINE = 120  # generated programs are for reading: no line of the model's code is longer than this


def compiled(name, tmp_path, monkeypatch) -> str:
    """The output of `pplc compile <model> -o <file>`, run from the repository root as a user would."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / f"{name}.py"
    assert cli.main(["compile", MODELS[name], "-o", str(out)]) == 0
    return out.read_text()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_generated_code_equals_golden(name, tmp_path, monkeypatch):
    text = compiled(name, tmp_path, monkeypatch)
    path = os.path.join(GOLDEN, f"{name}.py")
    if REGEN:
        with open(path, "w") as f:
            f.write(text)
        return
    assert os.path.exists(path), f"no golden file {path}; create it with PPLC_REGEN_GOLDEN=1"
    with open(path) as f:
        golden = f.read()
    if text != golden:
        diff = "".join(difflib.unified_diff(golden.splitlines(True), text.splitlines(True), f"golden/{name}.py",
                                            "pplc compile", n=2))
        pytest.fail(f"generated code differs from {path} (rerun with PPLC_REGEN_GOLDEN=1 if intended):\n{diff}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_golden_file_is_a_valid_program_with_short_lines(name):
    """Each golden file compiles as Python, and its model code (everything above the standalone `main`) keeps
    its lines short enough to read (comments quoting a .ppl line aside)."""
    path = os.path.join(GOLDEN, f"{name}.py")
    with open(path) as f:
        text = f.read()
    compile(text, path, "exec")
    model_part = text.split("\ndef main(", 1)[0]
    long = [(i + 1, len(line)) for i, line in enumerate(model_part.splitlines())
            if len(line) > MAX_LINE and not line.lstrip().startswith("#")]  # comments quote the .ppl source
    assert not long, f"{name}.py: lines longer than {MAX_LINE} characters (line, length): {long}"
