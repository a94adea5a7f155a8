"""Make the examples' small data files: eight schools' published table, and data simulated from the models.

    python examples/make_data.py        # writes examples/*.json / *.npz (they are committed; rerun to remake)
"""
import json
import os

import numpy as np

import pplc

HERE = os.path.dirname(os.path.abspath(__file__))


def eight_schools():
    # Rubin (1981): estimated coaching effects and their standard errors.
    data = {"y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}
    with open(os.path.join(HERE, "eight_schools.json"), "w") as f:
        json.dump(data, f)


def mnist_like(examples=1000, pixels=16, seed=0):
    """Images in [0, 1] (sparse, like MNIST's), labels drawn from the logistic-regression model itself."""
    rng = np.random.default_rng(seed)
    images = (rng.random((examples, pixels)) * (rng.random((examples, pixels)) < 0.3)).astype(np.float32)
    model = pplc.compile_file(os.path.join(HERE, "mnist_logreg.ppl"))
    draw = model.sample_prior({"images": images}, seed=seed)
    np.savez_compressed(os.path.join(HERE, "mnist_logreg_sim.npz"), images=images, labels=draw["labels"])


def movielens_like(users=60, movies=40, seed=0):
    """A watched-or-not matrix drawn from the matrix-factorisation model (prior draw of the embeddings)."""
    model = pplc.compile_file(os.path.join(HERE, "movielens_mf.ppl"))
    placeholder = np.zeros((users, movies), bool)
    draw = model.sample_prior({"watched": placeholder}, seed=seed)
    np.savez_compressed(os.path.join(HERE, "movielens_mf_sim.npz"), watched=draw["watched"].astype(bool))


if __name__ == "__main__":
    eight_schools()
    mnist_like()
    movielens_like()
    print("wrote", ", ".join(sorted(f for f in os.listdir(HERE) if f.endswith((".json", ".npz")))))
