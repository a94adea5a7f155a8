check data_object_array.ppl --data data_object_array.npz
