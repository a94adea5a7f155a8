"""Writes the binary data files of the golden bad cases (run once; the files are committed)."""
import os

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad")


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


if __name__ == "__main__":
    main()
