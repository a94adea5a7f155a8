"""The checked IR of the example models: kinds, stored layouts with named dims, placement, supports."""
import os

import pplc
from conftest import EXAMPLES


def ir_of(name):
    return pplc.compile_file(os.path.join(EXAMPLES, name)).ir


def table(model):
    return {(v.name, v.kind): (v.phys, v.sharded_dim, v.support) for v in model.variables}


def test_mnist_ir():
    m = ir_of("mnist_logreg.ppl")
    t = table(m)
    assert t[("images", "data")] == (("examples", "pixels"), "examples", "real")
    assert t[("w", "latent")] == (("pixels", "classes"), None, "real")
    assert t[("labels", "observed")] == (("examples",), "examples", "categorical")
    assert t[("accuracy", "track")][0] == ()
    assert m.sharded_dims == ("examples",)
    assert m.dim_map["classes"].size == 10


def test_movielens_ir():
    t = table(ir_of("movielens_mf.ppl"))
    assert t[("user_embedding", "latent")] == (("users", "dim"), "users", "real")
    assert t[("user_bias", "latent")] == (("users",), "users", "real")
    assert t[("movie_embedding", "latent")] == (("movies", "dim"), None, "real")
    assert t[("watched", "observed")] == (("users", "movies"), "users", "binary")


def test_eight_schools_ir():
    t = table(ir_of("eight_schools.ppl"))
    assert t[("tau", "latent")] == ((), None, "positive")
    assert t[("theta_raw", "latent")] == (("schools",), None, "real")
    assert t[("theta", "deterministic")][0] == ("schools",)


def test_view_inside_plate_moves_plate_dim_first():
    # x is stored [pixels, examples]; inside plate examples it is seen per item: [examples | pixels].
    m = pplc.compile(
        "data x: real[pixels, examples]\ndata y: real[examples]\nw: real[pixels] ~ Normal(0, 1)\n"
        "plate examples {\n  y ~ Normal(x @ w, 1)\n}\n", "t.ppl")
    assert "jnp.einsum('...pe->...ep', x)" in m.source


def test_generated_code_comments_cite_ppl_lines():
    src = pplc.compile_file(os.path.join(EXAMPLES, "movielens_mf.ppl")).source
    assert "# movielens_mf.ppl:9  user_embedding: real[dim] ~ Normal(0, 1)" in src
    assert "tfed.Sharded(" in src and "shard_axis_name=shard_axes" in src


def test_observing_a_computed_quantity_is_a_located_error():
    import pytest

    text = "data w: real[n]\nlog_w = log(w)\nmu ~ Normal(0, 1)\nlog_w ~ Normal(mu, 1)\n"
    with pytest.raises(pplc.PPLError) as e:
        pplc.compile(text, "m.ppl")
    msg = e.value.render()
    assert msg.startswith("m.ppl:4:1: error: `log_w` is computed from data (at 2:1)")
    assert "LogNormal" in msg
