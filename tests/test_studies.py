"""The seed's two studies end to end: MNIST posterior predictive accuracy, MovieLens recommendations."""
import os

import numpy as np
import pytest
from conftest import EXAMPLES, pplc_in_process, shared_path

import pplc
from pplc.studies import datasets, recommend

# The seed's sampler: plain HMC (unit mass matrix), a fixed number of leapfrog steps, the step size adapted
# by dual averaging from 0.01, the initial state drawn from the prior.
SEED_HMC = dict(sampler="hmc", metric="unit", step_size=0.01, leapfrog=100, init="prior")


def _write_tiny_ml100k(directory, users=24, movies=16, seed=0):
    """ml-100k-format files where popularity is strong: movie j is watched with probability falling in j,
    and user 0 watches only two movies (the least active)."""
    rng = np.random.default_rng(seed)
    pop = np.linspace(0.9, 0.05, movies)
    w = rng.random((users, movies)) < pop
    w[0] = False
    w[0, [1, 5]] = True
    w[:, 0] |= np.arange(users) > 0  # movie 1 (column 0) is the most watched, except by user 0
    rows = [f"{u + 1}\t{m + 1}\t{rng.integers(1, 6)}\t{880000000 + u * 100 + m}" for u, m in zip(*np.nonzero(w))]
    rng.shuffle(rows)
    with open(os.path.join(directory, "u.data"), "w") as f:
        f.write("\n".join(rows) + "\n")
    genres = datasets.ML100K_GENRES
    with open(os.path.join(directory, "u.item"), "w", encoding="latin-1") as f:
        for m in range(movies):
            flags = ["0"] * len(genres)
            flags[1 + m % 5] = "1"
            f.write(f"{m + 1}|Movie {m + 1} (199{m % 10})|01-Jan-1995||http://x/{m}|" + "|".join(flags) + "\n")
    return w


@pytest.fixture(scope="module")
def tiny_movielens(tmp_path_factory):
    d = tmp_path_factory.mktemp("ml")
    w = _write_tiny_ml100k(str(d))
    data = datasets.load_movielens(str(d))
    assert np.array_equal(data["watched"], w)
    model = pplc.compile_file(os.path.join(EXAMPLES, "movielens_mf.ppl"))
    fit = model.sample(data, devices=2, chains=2, warmup=150, draws=100, **dict(SEED_HMC, leapfrog=10), seed=1)
    return d, data, model, fit


def test_recommendations_of_the_least_active_user_are_popular_movies(tiny_movielens, tmp_path):
    _, data, model, fit = tiny_movielens
    least, most = recommend.recommend(model.program, fit.draws, data)
    w = data["watched"]
    assert (least.label, least.index, least.watched) == ("least active", 0, 2)
    assert most.watched == w.sum(1).max() and most.index == int(np.argmax(w.sum(1)))
    assert least.picks.shape == (2, 100)
    for u in (least, most):
        assert not w[u.index, u.picks.ravel()].any(), "a pick the user has already watched"
    top_title, top_count = least.by_title()[0]
    assert top_title in least.popular_unseen
    assert top_title == "Movie 1 (1990)", least.summary()  # watched by every other user
    assert sum(c for _, c in least.by_title()) == sum(c for _, c in least.by_genre()) == 200
    paths = recommend.write([least, most], str(tmp_path))
    for p in paths[:2]:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    text = open(os.path.join(tmp_path, "summary.txt")).read()
    assert "least active user 1 (2 movies watched)" in text and top_title in text


def test_top_picks_rank_by_the_models_probabilities(tiny_movielens):
    _, data, model, fit = tiny_movielens
    d = fit.draws
    row = 3
    logits = _numpy_logits(d, row)
    logits[:, :, data["watched"][row]] = -np.inf
    picks = recommend.top_picks(model.program, d, data, row)
    assert np.array_equal(picks, np.argmax(logits, axis=-1))


def _numpy_logits(draws, row):
    return (np.einsum("csmd,csd->csm", draws["movie_embedding"], draws["user_embedding"][:, :, row])
            + draws["movie_bias"] + draws["user_bias"][:, :, row, None])


def test_logit_rhat_is_arviz_rhat_of_the_models_logits(tiny_movielens):
    """The user's logits are the model's linear predictor (a NumPy computation from the draws), and the R-hat
    and bulk ESS reported are ArviZ's over all chains, worst and median over the unwatched movies."""
    import arviz as az

    _, data, model, fit = tiny_movielens
    row = 3
    logits = recommend.user_logits(model.program, fit.draws, data, row, chunk=64)  # 4 chunks, the last padded
    expected = _numpy_logits(fit.draws, row)
    assert logits.shape == expected.shape == (2, 100, 16)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    unseen = ~data["watched"][row]
    ref = az.rhat(az.convert_to_dataset({"z": expected[:, :, unseen].astype(np.float64)}))["z"].values
    ess = az.ess(az.convert_to_dataset({"z": expected[:, :, unseen].astype(np.float64)}), method="bulk")["z"].values
    user = recommend.recommend(model.program, fit.draws, data, users=[row + 1])[0]
    st = user.logit_stats
    assert (st["movies"], st["chains"], st["draws"]) == (int(unseen.sum()), 2, 100)
    np.testing.assert_allclose([st["rhat_max"], st["rhat_median"]], [ref.max(), np.median(ref)], rtol=1e-4)
    np.testing.assert_allclose([st["ess_bulk_min"], st["ess_bulk_median"]], [ess.min(), np.median(ess)], rtol=1e-3)
    assert st["rhat_worst_title"] == data["meta/titles"][np.flatnonzero(unseen)[np.argmax(ref)]]
    assert st["rhat_above"] == int(np.sum(ref > 1.01))
    assert f"R-hat worst {st['rhat_max']:.3f}" in user.summary()
    assert user.to_json()["logit_stats"] == st


def test_chains_that_disagree_get_a_large_logit_rhat(tiny_movielens):
    """Shift one chain's user bias (every logit of the user moves, the ranking does not): the picks stay,
    the logits' R-hat flags the chains' disagreement."""
    _, data, model, fit = tiny_movielens
    row = 3
    draws = {k: np.array(v) for k, v in fit.draws.items()}
    draws["user_bias"][1, :, row] += 10.0
    same = recommend.recommend(model.program, fit.draws, data, users=[row + 1])[0]
    apart = recommend.recommend(model.program, draws, data, users=[row + 1])[0]
    assert np.array_equal(same.picks, apart.picks)
    # rank-normalised R-hat is bounded: two chains wholly apart give about 1.8 on 100 draws each
    assert apart.logit_stats["rhat_median"] > 1.5 and apart.logit_stats["rhat_median"] > same.logit_stats["rhat_max"]
    assert apart.logit_stats["rhat_above"] == apart.logit_stats["movies"]
    assert "the chains disagree" in apart.summary()


def test_recommend_cli(tiny_movielens, tmp_path):
    d, data, model, fit = tiny_movielens
    fit.save(str(tmp_path / "fit.npz"))
    ml = str(tmp_path / "ml.npz")
    model_path = os.path.join(EXAMPLES, "movielens_mf.ppl")

    pplc_cli = pplc_in_process
    r = pplc_cli("data", "movielens", str(d), "-o", ml)
    assert r.returncode == 0, r.stderr
    assert "24 users x 16 movies" in r.stderr
    r = pplc_cli("recommend", model_path, "--fit", str(tmp_path / "fit.npz"), "--data", ml, "-o", str(tmp_path / "rec"),
                 "--user", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("user 1 (2 movies watched): ")
    assert "logits of the 14 unwatched movies over all 2 chains: R-hat worst " in r.stdout
    assert os.path.exists(tmp_path / "rec" / "user_1.png")
    r = pplc_cli("recommend", model_path, "--fit", str(tmp_path / "fit.npz"), "--data", ml, "--user", "999")
    assert r.returncode == 1 and "no user 999 in the data" in r.stderr
    r = pplc_cli("predict", model_path, "--fit", str(tmp_path / "fit.npz"), "--data", ml)
    assert r.returncode == 0, r.stderr
    assert "watched: predictive probabilities, shape [24, 16], averaged over 2 x 100 draws" in r.stdout


@pytest.mark.slow
def test_mnist_bayesian_model_average_beats_single_draws():
    """The seed's study 1 at CPU size: 10,000 training images over 8 devices, HMC (step size 0.01 adapted by
    dual averaging, 100 leapfrog steps), 100 warmup + 100 draws; accuracy on the 10,000 test images."""
    train, test = datasets.load_mnist(shared_path("data", "mnist"), train=10_000)
    model = pplc.compile_file(os.path.join(EXAMPLES, "mnist_logreg.ppl"))
    fit = model.sample(train, devices=8, chains=1, warmup=100, draws=100, **SEED_HMC, seed=0)
    met = fit.predict(test).metrics["labels"]
    print(f"\nMNIST 10k/8 devices: BMA {met['bma_accuracy']:.4f}, single draws {met['single_draw_accuracy']:.4f}, "
          f"acceptance {np.mean(fit.trace['accept_ratio']):.3f}, {fit.timing}")
    assert met["bma_accuracy"] >= 0.90
    assert met["bma_accuracy"] > met["single_draw_accuracy"]


@pytest.mark.slow
def test_movielens_100k_least_active_user_gets_popular_movies():
    """The seed's study 2 on MovieLens 100K at CPU size: the least active user's most frequent pick is among
    the ten most-watched movies that user has not seen."""
    data = datasets.load_movielens(shared_path("data", "movielens-100k"))
    model = pplc.compile_file(os.path.join(EXAMPLES, "movielens_mf.ppl"))
    fit = model.sample(data, devices=1, chains=2, warmup=100, draws=50, **dict(SEED_HMC, leapfrog=20), seed=0)
    least, most = recommend.recommend(model.program, fit.draws, data)
    print("\n" + least.summary() + "\n" + most.summary())
    assert least.watched == 20 and most.watched == 737
    assert least.by_title()[0][0] in least.popular_unseen
