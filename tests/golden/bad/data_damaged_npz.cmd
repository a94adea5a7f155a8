check data_damaged_npz.ppl --data data_damaged_npz.npz
