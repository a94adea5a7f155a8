check data_dim_conflict.ppl --data data_dim_conflict.json
