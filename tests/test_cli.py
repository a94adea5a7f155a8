"""The command line's options: `pplc run`'s sampler options come from `SamplerConfig`; `python -m pplc` runs it."""
import subprocess
import sys

import pytest

from pplc.cli.options import RUN_GROUPS, parser, sampler_settings
from pplc.runtime.sampling.config import SamplerConfig


def _run_parser():
    sub = next(a for a in parser()._actions if a.dest == "command")
    return sub.choices["run"]


def test_run_options_are_the_sampler_config_fields_with_their_defaults():
    args = parser().parse_args(["run", "m.ppl", "--data", "d.json"])
    assert sampler_settings(args) == {f.name: f.default for f in SamplerConfig.options()}
    assert SamplerConfig(**sampler_settings(args)) == SamplerConfig()


def test_run_options_parse_to_the_config_types():
    args = parser().parse_args(["run", "m.ppl", "--data", "d.json", "--step-size", "0.25", "--max-tree-depth",
                                "7", "--init", "0", "--x64", "--target-accept", "0.9", "--sampler", "hmc"])
    cfg = SamplerConfig(**sampler_settings(args))
    assert (cfg.step_size, cfg.max_tree_depth, cfg.init, cfg.x64, cfg.target_accept, cfg.sampler) == (
        0.25, 7, "0", True, 0.9, "hmc")
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "m.ppl", "--data", "d.json", "--metric", "dense"])  # not one of its choices


def test_each_sampler_option_has_its_help_choices_and_group():
    run = _run_parser()
    by_dest = {a.dest: a for a in run._actions}
    groups = {g.title: {a.dest for a in g._group_actions} for g in run._action_groups}
    for f in SamplerConfig.options():
        action = by_dest[f.name]
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        assert action.help.startswith(f.metadata["help"])  # and its default, added when the help lacks it
        assert f.default is False or "default" in action.help
        assert (tuple(action.choices) if action.choices else None) == f.metadata["choices"]
        assert f.name in groups[RUN_GROUPS[f.metadata["group"]]]


def test_python_m_pplc():
    r = subprocess.run([sys.executable, "-m", "pplc", "run", "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "--max-tree-depth" in r.stdout and "adaptation (warmup):" in r.stdout and "devices:" in r.stdout
    r = subprocess.run([sys.executable, "-m", "pplc", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 1 and "invalid choice: 'frobnicate'" in r.stderr
