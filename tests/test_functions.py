"""User functions (issue 11): `def name(params) = EXPR`, inlined at each call and shape-checked there."""

import numpy as np
import pytest
import scipy.stats as st

import pplc
from pplc.dsl.diagnostics import PPLError

MODEL = """data x: real[n]
data y: real[n]
def linear(a, b, v) = a + b * v
def sq(z) = z * z
def nested(v) = sq(linear(0, 2, v))
a ~ Normal(0, 1)
b ~ Normal(0, 1)
plate n sharded over devices {
  y ~ Normal(linear(a, b, x), exp(sq(a) - 1))
}
track t = sum(nested(x))
"""


def test_functions_are_inlined_on_scalars_vectors_and_plate_items():
    model = pplc.compile(MODEL, "fn.ppl")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=5), rng.normal(size=5)
    want = st.norm().logpdf([0.3, -0.2]).sum() + st.norm(0.3 - 0.2 * x, np.exp(0.09 - 1)).logpdf(y).sum()
    for devices in (1, 2):
        assert model.log_prob({"a": 0.3, "b": -0.2}, {"x": x, "y": y}, devices=devices) == pytest.approx(want,
                                                                                                        rel=1e-5)


@pytest.mark.parametrize("text, where, message", [
    ("def f(a) = f(a)\nz = f(1)\n", "1:12", "calls itself"),
    ("def f(a, a) = a\n", "1:1", "parameter `a` is named twice"),
    ("def f(a) = a\nz = f(1, 2)\n", "2:5", "takes 1 argument (a), got 2"),
    ("data v: real[n]\nplate n {\n  def g(a) = a\n}\n", "3:3", "defined at the top level"),
    ("data v: real[n]\ndata w: real[m]\ndef add(p, q) = p + q\nz = add(v, w)\n", "3:17", "shape mismatch"),
])
def test_function_errors_are_located(text, where, message):
    with pytest.raises(PPLError) as e:
        pplc.compile(text, "m.ppl")
    rendered = e.value.render()
    assert f"m.ppl:{where}: error:" in rendered and message in rendered, rendered
