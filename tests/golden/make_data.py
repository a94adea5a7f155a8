"""Writes the binary data files of the golden cases, bad and messages (run once; the files are committed)."""
import os

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad")
MESSAGES = os.path.join(os.path.dirname(HERE), "messages")


def main():
    counts = np.array([3, 0, 2, 5])
    # an object array: np.load(allow_pickle=False) refuses it
    np.savez(os.path.join(HERE, "data_object_array.npz"), counts=np.array([3, "n/a", 2, 5], dtype=object))
    # a .npz cut short
    np.savez(os.path.join(HERE, "data_damaged_npz.npz"), counts=counts)
    path = os.path.join(HERE, "data_damaged_npz.npz")
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[:len(blob) // 2])
    # one unnamed array
    np.save(os.path.join(HERE, "data_npy_file.npy"), counts)
    # data, not a fit, given to `pplc summary`
    np.savez(os.path.join(HERE, "summary_of_an_npz_of_data.npz"), y=np.zeros(3, np.float32))
    # a model file that is not text
    open(os.path.join(HERE, "model_not_text.ppl"), "wb").write(bytes([0x93, 0xff, 0xfe, 0x00, 0x81]) * 8)
    # a small fit for `pplc summary`: 12 elements of w (all shown, in index order), one chain shifted
    from pplc.runtime.output import Fit

    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 200, 3, 4)) + np.arange(12).reshape(3, 4)
    w[3, :, 2, 1] += 3.0  # chain 3 disagrees about w[2, 1]: an R-hat warning
    trace = {"diverging": np.zeros((4, 200), bool), "tree_depth": np.full((4, 200), 3),
             "n_leapfrog": np.full((4, 200), 7), "energy": rng.normal(size=(4, 200)),
             "accept_ratio": rng.uniform(0.6, 1, (4, 200)), "step_size": np.full((4, 200), 0.4)}
    Fit({"mu": rng.normal(size=(4, 200)), "w": w}, trace, dims={"mu": [], "w": ["rows", "cols"]},
        meta={"config": {"sampler": "nuts", "warmup": 200, "max_tree_depth": 10}}).save(
        os.path.join(MESSAGES, "small_fit.npz"))


if __name__ == "__main__":
    main()
