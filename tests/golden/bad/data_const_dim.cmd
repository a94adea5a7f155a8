check data_const_dim.ppl --data data_const_dim.json
