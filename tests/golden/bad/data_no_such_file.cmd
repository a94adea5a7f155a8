check data_no_such_file.ppl --data counts.npz
