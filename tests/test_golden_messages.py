"""What pplc prints when nothing is wrong: golden outputs of `--version`, the help, notes and a summary.

Each tests/golden/messages/NAME.cmd is one `pplc` command line, run in that folder in this process; NAME.out is
what it prints (stdout, then stderr) and its exit status. `{tmp}` in a command is a temporary folder and
`{version}` in an output is pplc's version. Regenerate with PPLC_REGEN_GOLDEN=1 (then read every file).
"""
import os
import shlex

import jax
import pytest

import pplc
from pplc import cli

MESSAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "messages")
REGEN = os.environ.get("PPLC_REGEN_GOLDEN") == "1"
CASES = sorted(f[:-4] for f in os.listdir(MESSAGES) if f.endswith(".cmd"))


@pytest.mark.parametrize("case", CASES)
def test_golden_message(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(MESSAGES)
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps the help at the terminal's width
    argv = shlex.split(open(f"{case}.cmd").read().replace("{tmp}", str(tmp_path)))
    jax.devices()  # the backend is up (8 host devices, tests/conftest.py), as it is for any later test
    capsys.readouterr()
    try:
        rc = cli.main(list(argv))
    except SystemExit as e:  # argparse's --help and --version exit
        rc = e.code
    out, err = capsys.readouterr()
    got = (f"$ pplc {shlex.join(argv)}\n--- stdout\n{out}--- stderr\n{err}[exit status {rc}]\n"
           .replace(str(tmp_path), "{tmp}").replace(pplc.__version__, "{version}"))
    path = os.path.join(MESSAGES, f"{case}.out")
    assert rc == 0 and "Traceback" not in err
    if REGEN:
        with open(path, "w") as f:
            f.write(got)
        pytest.skip(f"PPLC_REGEN_GOLDEN=1: wrote {path}; read it, then run again without PPLC_REGEN_GOLDEN")
    assert os.path.exists(path), f"no expected output for {case}: run with PPLC_REGEN_GOLDEN=1"
    assert got == open(path).read()
