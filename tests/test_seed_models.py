"""pplc's seed models against the tutorial's hand-written TFP programs: same state, same log density and gradient.

examples/mnist_logreg.ppl and examples/movielens_mf.ppl compiled by pplc, evaluated with `Model.log_prob` /
`Model.grad_log_prob` on 8 host devices, equal the hand-written programs of tests/reference_programs.py run
under jax.shard_map (8 devices when the plate size divides, else 4 devices that do divide it while pplc pads
to a multiple of 8 and masks), within 1e-5 (see `reference_programs.assert_close`). The hand-written programs
are themselves checked against closed forms in float64 NumPy, so the two cannot agree by sharing a mistake.
"""
import os

import jax
import numpy as np
import pytest
from reference_programs import (assert_close, mnist_closed_form, mnist_value_and_grad, movielens_closed_form,
                                movielens_value_and_grad)

import pplc

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# (items in the sharded plate, devices of the hand-written program, devices of pplc, pplc's SPMD mode)
SIZES = [(64, 8, 8, "shard_map"), (100, 4, 8, "shard_map"), (100, 4, 8, "pmap")]
IDS = ["8-divides", "100-padded-to-104", "100-padded-pmap"]


@pytest.fixture(scope="module")
def mnist():
    return pplc.compile_file(os.path.join(EXAMPLES, "mnist_logreg.ppl"))


@pytest.fixture(scope="module")
def movielens():
    return pplc.compile_file(os.path.join(EXAMPLES, "movielens_mf.ppl"))


def mnist_data(n, pixels=24, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    images = (rng.random((n, pixels)) * (rng.random((n, pixels)) < 0.4)).astype(np.float32)
    labels = rng.integers(0, classes, n).astype(np.int32)
    w = rng.normal(size=(pixels, classes)).astype(np.float32)
    b = rng.normal(size=classes).astype(np.float32)
    return images, labels, w, b


@pytest.mark.parametrize("n,ref_devices,devices,spmd", SIZES, ids=IDS)
def test_mnist_log_prob_and_gradient_equal_the_handwritten_program(mnist, n, ref_devices, devices, spmd):
    images, labels, w, b = mnist_data(n)
    ref_val, (ref_gw, ref_gb) = mnist_value_and_grad(ref_devices)((w, b), (images, labels))

    exact_val, (exact_gw, exact_gb) = mnist_closed_form(w, b, images, labels)
    assert_close(ref_val, exact_val, "hand-written log density vs closed form")
    assert_close(ref_gw, exact_gw, "hand-written d/dw vs closed form")
    assert_close(ref_gb, exact_gb, "hand-written d/db vs closed form")

    data = {"images": images, "labels": labels}
    params = {"w": w, "b": b}
    val = mnist.log_prob(params, data, devices=devices, spmd=spmd)
    grad = mnist.grad_log_prob(params, data, devices=devices, spmd=spmd)
    assert_close(val, ref_val, f"pplc log density on {devices} devices")
    assert_close(grad["w"], ref_gw, "pplc d/dw")
    assert_close(grad["b"], ref_gb, "pplc d/db")


def movielens_data(users, movies=30, dim=20, seed=1):
    rng = np.random.default_rng(seed)
    watched = rng.random((users, movies)) < 0.3
    U = rng.normal(size=(users, dim)).astype(np.float32) * 0.5
    u = rng.normal(size=users).astype(np.float32)
    V = rng.normal(size=(movies, dim)).astype(np.float32) * 0.5
    v = rng.normal(size=movies).astype(np.float32)
    return watched, U, u, V, v


@pytest.mark.parametrize("users,ref_devices,devices,spmd", SIZES, ids=IDS)
def test_movielens_log_prob_and_gradient_equal_the_handwritten_program(movielens, users, ref_devices, devices,
                                                                        spmd):
    dim = movielens.ir.dim_map["dim"].size
    watched, U, u, V, v = movielens_data(users, dim=dim)
    fn = movielens_value_and_grad(ref_devices, dim, V.shape[0])
    ref_val, ref_grads = fn((U, u, V, v), watched)

    exact_val, exact_grads = movielens_closed_form(U, u, V, v, watched)
    assert_close(ref_val, exact_val, "hand-written log density vs closed form")
    for name, g, e in zip(["U", "u", "V", "v"], ref_grads, exact_grads):
        assert_close(g, e, f"hand-written d/d{name} vs closed form")

    params = {"user_embedding": U, "user_bias": u, "movie_embedding": V, "movie_bias": v}
    data = {"watched": watched}
    val = movielens.log_prob(params, data, devices=devices, spmd=spmd)
    grad = movielens.grad_log_prob(params, data, devices=devices, spmd=spmd)
    assert_close(val, ref_val, f"pplc log density on {devices} devices")
    for name, g in zip(["user_embedding", "user_bias", "movie_embedding", "movie_bias"], ref_grads):
        assert_close(grad[name], g, f"pplc d/d{name}")


def test_mnist_sharded_site_is_the_tutorials():
    """The generated MNIST program holds the tutorial's construction: w and b replicated (plain parts), the
    labels' likelihood Sharded over the data axis around Independent(Categorical(logits)) (Masked in between,
    for padded examples; left out when the mask is known to be all true, a NumPy array: nothing padded)."""
    from tensorflow_probability.substrates.jax.experimental import distribute as tfed

    module = pplc.compile_file(os.path.join(EXAMPLES, "mnist_logreg.ppl")).module
    images, labels, w, b = mnist_data(8)
    dims = {"examples": 8, "pixels": images.shape[1], "classes": 10}
    jd = module.make_model({"images": images, "labels": labels}, dims, {"examples": np.arange(8) < 7}, [])
    assert isinstance(jd, tfed.JointDistributionCoroutine)
    dists, _ = jd.sample_distributions(value=(w, b, labels), seed=jax.random.PRNGKey(0))
    parts = dists._asdict()
    assert not isinstance(parts["w"], tfed.Sharded) and not isinstance(parts["b"], tfed.Sharded)
    lik = parts["labels"]
    assert isinstance(lik, tfed.Sharded)
    inner = lik.distribution
    assert type(inner).__name__.startswith("Independent") and inner.reinterpreted_batch_ndims == 1
    assert type(inner.distribution).__name__.startswith("Masked")
    assert type(inner.distribution.distribution).__name__.startswith("Categorical")
    known = module.make_model({"images": images, "labels": labels}, dims, {"examples": np.ones(8, bool)}, [])
    inner = known.sample_distributions(value=(w, b, labels), seed=jax.random.PRNGKey(0))[0]._asdict()["labels"]
    assert type(inner.distribution.distribution).__name__.startswith("Categorical")
