"""Loaders for the seed's published data sets (MNIST IDX, MovieLens 100K and 1M), turned into model data."""
from __future__ import annotations

import gzip
import os

import numpy as np

from ..dsl.diagnostics import Diagnostic, PPLError
from ..runtime.data import META
from ..runtime.files import save_npz

DATASETS = ("mnist", "movielens")  # what `pplc data` turns into model data


# IDX element types (the third byte of the magic number).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}

# ml-100k's u.genre, in flag order (used when u.genre is absent).
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western"]


def _fail(msg, path=None, hint=None):
    raise PPLError(Diagnostic(msg, filename=path, hint=hint))


def _find(directory: str, *names: str) -> str | None:
    """The first of `names` (each tried as is and with .gz) that exists in `directory`."""
    for n in names:
        for cand in (n, n + ".gz") if not n.endswith(".gz") else (n,):
            p = os.path.join(directory, cand)
            if os.path.exists(p):
                return p
    return None


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        _fail(f"cannot read {path}: {e}")


# ---------------------------------------------------------------------------------------------- MNIST
def read_idx(path: str) -> np.ndarray:
    """An IDX file (plain or .gz) as a numpy array: magic 0,0,type,ndim; big-endian int32 dims; the data."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        _fail("not an IDX file (bad magic number)", path, hint="MNIST files are the original *-idx?-ubyte(.gz)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        _fail("IDX file truncated in its header", path)
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    n = int(np.prod(shape)) if shape else 1
    if len(raw) - header < n * dtype.itemsize:
        _fail(f"IDX file holds {len(raw) - header} bytes of data but its header says {list(shape)} "
              f"({n * dtype.itemsize} bytes)", path)
    return np.frombuffer(raw, dtype, count=n, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(directory: str, train: int | None = None, test: int | None = None) -> tuple[dict, dict]:
    """MNIST as the logistic-regression model's data: (train, test), each {images: [N, 784] in [0, 1],
    labels: [N] int}; `train`/`test` keep the first that many examples."""
    out = []
    for split, limit in (("train", train), ("test", test)):
        paths = {}
        for part in ("images", "labels"):
            base = MNIST_FILES[f"{split}_{part}"]
            p = _find(directory, base, base.replace("-idx", ".idx"))
            if p is None:
                _fail(f"no MNIST {split} {part} in {directory} (looked for {base}.gz)")
            paths[part] = p
        images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            _fail(f"MNIST {split}: images {list(images.shape)} and labels {list(labels.shape)} do not match "
                  "([N, rows, cols] and [N])", paths["images"])
        if limit is not None:
            if not 1 <= limit <= len(labels):
                _fail(f"asked for {limit} {split} examples; the file has {len(labels)}", paths["labels"])
            images, labels = images[:limit], labels[:limit]
        out.append({"images": (images.reshape(len(images), -1) / np.float32(255.0)).astype(np.float32),
                    "labels": labels.astype(np.int32)})
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------- MovieLens
def _int_table(text: str, sep: str, path: str) -> np.ndarray:
    """Integer rows of a `sep`-separated text (all lines the same number of fields) as [lines, fields]."""
    lines = text.strip().splitlines()
    if not lines:
        _fail("no ratings in the file", path)
    width = len(lines[0].split(sep))
    try:
        flat = np.array(text.replace(sep, " ").split(), dtype=np.int64)
    except ValueError:
        _fail(f"ratings are integer fields separated by {sep!r}", path)
    if flat.size != width * len(lines):
        _fail(f"every line must have {width} fields", path)
    return flat.reshape(len(lines), width)


def _text_lines(directory: str, name: str) -> list[str] | None:
    """The non-blank lines of the text file `name` (latin-1, maybe .gz) in `directory`; None if there is none."""
    path = _find(directory, name)
    if path is None:
        return None
    return [ln for ln in _read_bytes(path).decode("latin-1").splitlines() if ln.strip()]


def _movies_100k(directory: str) -> dict[int, tuple[str, str, str]]:
    """ml-100k's u.item: movie id -> (title, first genre, all genres joined by |)."""
    genres = ML100K_GENRES
    rows = _text_lines(directory, "u.genre")
    if rows is not None:
        genres = [name for name, _ in sorted((ln.rsplit("|", 1) for ln in rows), key=lambda r: int(r[1]))]
    out = {}
    for ln in _text_lines(directory, "u.item") or []:
        f = ln.split("|")
        flags = f[-len(genres):]
        names = [g for g, x in zip(genres, flags) if x.strip() == "1"]
        out[int(f[0])] = ("|".join(f[1:len(f) - len(genres) - 3]), names[0] if names else "unknown", "|".join(names))
    return out


def _movies_1m(directory: str) -> dict[int, tuple[str, str, str]]:
    """ml-1m's movies.dat: movie id -> (title, first genre, all genres joined by |)."""
    out = {}
    for ln in _text_lines(directory, "movies.dat") or []:
        mid, title, genres = ln.split("::", 2)
        out[int(mid)] = (title, genres.split("|")[0], genres)
    return out


def load_movielens(directory: str) -> dict:
    """MovieLens (ml-100k: u.data, u.item; ml-1m: ratings.dat or ratings_uir.dat.gz, movies.dat) as the
    matrix-factorisation model's data: `watched` bool[users, movies] (rated = watched; ratings ignored),
    users and movies in id order (movies: those rated at least once), and, under `meta/`, the ids, titles,
    first genres and all genres of the movies."""
    path = _find(directory, "u.data")
    if path is not None:
        table = _int_table(_read_bytes(path).decode("latin-1"), "\t", path)
        movies, name = _movies_100k(directory), "ml-100k"
    else:
        path = _find(directory, "ratings.dat", "ratings_uir.dat")
        if path is None:
            _fail(f"no MovieLens ratings in {directory}", hint="ml-100k has u.data; ml-1m has ratings.dat "
                  "(or ratings_uir.dat.gz)")
        table = _int_table(_read_bytes(path).decode("latin-1"), "::", path)
        movies, name = _movies_1m(directory), "ml-1m"
    if table.shape[1] < 2:
        _fail("ratings lines need at least user and movie ids", path)
    user_ids, u = np.unique(table[:, 0], return_inverse=True)
    movie_ids, m = np.unique(table[:, 1], return_inverse=True)
    watched = np.zeros((len(user_ids), len(movie_ids)), bool)
    watched[u, m] = True
    info = [movies.get(int(i), (f"movie {i}", "unknown", "")) for i in movie_ids]
    return {
        "watched": watched,
        META + "dataset": np.array(name),
        META + "user_ids": user_ids.astype(np.int32),
        META + "movie_ids": movie_ids.astype(np.int32),
        META + "titles": np.array([t for t, _, _ in info]),
        META + "genres": np.array([g for _, g, _ in info]),
        META + "all_genres": np.array([a for _, _, a in info]),
    }


def save(path: str, arrays: dict) -> None:
    """Write arrays to an .npz file, atomically (plain numeric and string arrays: loadable without pickle;
    compressed: MNIST's pixels are mostly 0)."""
    save_npz(path, arrays, compressed=True)


def test_path(path: str) -> str:
    """Where `pplc data mnist -o PATH` writes the test split: PATH with `_test` before the extension."""
    root, ext = os.path.splitext(path)
    return f"{root}_test{ext or '.npz'}"


test_path.__test__ = False  # not a pytest test
