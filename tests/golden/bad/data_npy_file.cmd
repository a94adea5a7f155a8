check data_npy_file.ppl --data data_npy_file.npy
