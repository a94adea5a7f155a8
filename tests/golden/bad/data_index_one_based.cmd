check data_index_one_based.ppl --data data_index_one_based.json
