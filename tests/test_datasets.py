"""Loaders of the published formats (MNIST IDX, MovieLens 100K and 1M) on files the tests make, and on ../shared."""
import gzip
import os

import numpy as np
import pytest
from conftest import EXAMPLES, pplc_in_process, shared_path

import pplc
from pplc.studies import datasets


def _idx(path, array, magic_type=0x08):
    head = bytes([0, 0, magic_type, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + array.astype(">u1").tobytes())


def _tiny_mnist(d, n_train=7, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _idx(os.path.join(d, datasets.MNIST_FILES[f"{split}_images"] + ".gz"), images)
        _idx(os.path.join(d, datasets.MNIST_FILES[f"{split}_labels"] + ".gz"), labels)
        arrays[split] = (images, labels)
    return arrays


def test_mnist_idx_to_model_data(tmp_path):
    made = _tiny_mnist(str(tmp_path))
    train, test = datasets.load_mnist(str(tmp_path))
    for got, (images, labels) in ((train, made["train"]), (test, made["test"])):
        assert got["images"].dtype == np.float32 and got["images"].shape == (len(labels), 784)
        np.testing.assert_allclose(got["images"] * 255, images.reshape(len(labels), 784), atol=1e-4)
        assert 0 <= got["images"].min() and got["images"].max() <= 1
        assert got["labels"].dtype == np.int32 and np.array_equal(got["labels"], labels)
    train, test = datasets.load_mnist(str(tmp_path), train=3, test=2)
    assert np.array_equal(train["labels"], made["train"][1][:3]) and len(test["images"]) == 2
    # the model takes it as it is
    model = pplc.compile_file(os.path.join(EXAMPLES, "mnist_logreg.ppl"))
    assert np.isfinite(model.log_prob({"w": np.zeros((784, 10)), "b": np.zeros(10)}, train))


def test_mnist_errors_name_the_file(tmp_path):
    with pytest.raises(pplc.PPLError, match="no MNIST train images"):
        datasets.load_mnist(str(tmp_path))
    _tiny_mnist(str(tmp_path))
    with pytest.raises(pplc.PPLError, match="asked for 100 train examples; the file has 7"):
        datasets.load_mnist(str(tmp_path), train=100)
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x01\x02\x03\x04rest")
    with pytest.raises(pplc.PPLError, match="not an IDX file") as e:
        datasets.read_idx(str(bad))
    assert "bad.gz" in e.value.render()
    with gzip.open(bad, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(pplc.PPLError, match="holds 3 bytes of data but its header says"):
        datasets.read_idx(str(bad))


def _tiny_ml1m(d):
    ratings = [(1, 10, 5), (1, 3, 3), (2, 3, 4), (3, 7, 1), (3, 10, 2), (3, 3, 5)]
    with gzip.open(os.path.join(d, "ratings_uir.dat.gz"), "wt") as f:
        f.write("".join(f"{u}::{m}::{r}\n" for u, m, r in ratings))
    with open(os.path.join(d, "movies.dat"), "w", encoding="latin-1") as f:
        f.write("3::Caf\xe9 Society (1996)::Drama|Romance\n7::Heat (1995)::Action|Crime|Thriller\n"
                "8::Never Rated (1990)::Comedy\n10::GoldenEye (1995)::Action|Adventure|Thriller\n")


def test_movielens_1m_format(tmp_path):
    _tiny_ml1m(str(tmp_path))
    ml = datasets.load_movielens(str(tmp_path))
    assert ml["watched"].dtype == np.bool_
    assert ml["watched"].tolist() == [[True, False, True], [True, False, False], [True, True, True]]
    assert ml["meta/movie_ids"].tolist() == [3, 7, 10]  # rated movies only, in id order
    assert ml["meta/user_ids"].tolist() == [1, 2, 3]
    assert ml["meta/titles"].tolist() == ["Caf\xe9 Society (1996)", "Heat (1995)", "GoldenEye (1995)"]
    assert ml["meta/genres"].tolist() == ["Drama", "Action", "Action"]
    assert ml["meta/all_genres"][1] == "Action|Crime|Thriller"
    assert str(ml["meta/dataset"]) == "ml-1m"


def test_movielens_100k_format(tmp_path):
    rows = ["2\t1\t4\t881250949", "1\t3\t3\t891717742", "3\t2\t1\t878887116", "1\t1\t5\t878887000"]
    (tmp_path / "u.data").write_text("\n".join(rows) + "\n")
    flags = lambda *on: "|".join("1" if i in on else "0" for i in range(19))  # noqa: E731
    (tmp_path / "u.item").write_bytes(
        ("1|Toy Story (1995)|01-Jan-1995||http://x|" + flags(3, 4, 5) + "\n"
         "2|Sabrina (1995)|01-Jan-1995||http://y|" + flags(5, 14) + "\n"
         "3|Unknown Genre|01-Jan-1995||http://z|" + flags() + "\n").encode("latin-1"))
    ml = datasets.load_movielens(str(tmp_path))
    assert ml["watched"].tolist() == [[True, False, True], [True, False, False], [False, True, False]]
    assert ml["meta/titles"].tolist() == ["Toy Story (1995)", "Sabrina (1995)", "Unknown Genre"]
    assert ml["meta/genres"].tolist() == ["Animation", "Comedy", "unknown"]
    assert ml["meta/all_genres"][0] == "Animation|Children's|Comedy"
    assert str(ml["meta/dataset"]) == "ml-100k"


def test_movielens_missing_ratings(tmp_path):
    with pytest.raises(pplc.PPLError, match="no MovieLens ratings in"):
        datasets.load_movielens(str(tmp_path))


def test_data_command_writes_model_data(tmp_path):
    _tiny_mnist(str(tmp_path))
    _tiny_ml1m(str(tmp_path))
    out = str(tmp_path / "out" / "mnist.npz")

    cli = pplc_in_process
    r = cli("data", "mnist", str(tmp_path), "-o", out, "--train", "4")
    assert r.returncode == 0, r.stderr
    assert "4 training images" in r.stderr and "5 test images" in r.stderr
    with np.load(out) as f:
        assert f["images"].shape == (4, 784) and f["labels"].shape == (4,)
    with np.load(str(tmp_path / "out" / "mnist_test.npz")) as f:
        assert f["images"].shape == (5, 784)
    ml = str(tmp_path / "ml.npz")
    r = cli("data", "movielens", str(tmp_path), "-o", ml)
    assert r.returncode == 0, r.stderr
    assert "3 users x 3 movies, 6 watched" in r.stderr
    # the metadata rides along without a warning from the model's data check
    from pplc.runtime import data as data_lib

    model = pplc.compile_file(os.path.join(EXAMPLES, "movielens_mf.ppl"))
    bound = data_lib.bind(model.ir, data_lib.load(ml), ml)
    assert bound.sizes["users"] == 3 and bound.warnings == ()
    r = cli("data", "movielens", str(tmp_path / "nothing"), "-o", ml)
    assert r.returncode == 1 and "no MovieLens ratings" in r.stderr


def test_shared_mnist():
    train, test = datasets.load_mnist(shared_path("data", "mnist"))
    assert train["images"].shape == (60000, 784) and test["images"].shape == (10000, 784)
    assert np.bincount(train["labels"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test["labels"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(train["images"].mean() * 255 - 33.318) < 1e-3 and abs(test["images"].mean() * 255 - 33.791) < 1e-3


def test_shared_movielens():
    ml = datasets.load_movielens(shared_path("data", "movielens-100k"))
    w = ml["watched"]
    assert w.shape == (943, 1682) and w.sum() == 100_000
    assert w.sum(1).min() == 20 and w.sum(1).max() == 737
    assert ml["meta/titles"][0] == "Toy Story (1995)" and ml["meta/genres"][0] == "Animation"
    ml = datasets.load_movielens(shared_path("data", "movielens-1m"))
    w = ml["watched"]
    assert w.shape == (6040, 3706) and w.sum() == 1_000_209
    assert w.sum(1).min() == 20 and w.sum(1).max() == 2314 and ml["meta/user_ids"][np.argmax(w.sum(1))] == 4169
    top = int(np.argmax(w.sum(0)))
    assert ml["meta/movie_ids"][top] == 2858 and ml["meta/titles"][top] == "American Beauty (1999)"
    assert w[:, top].sum() == 3428
