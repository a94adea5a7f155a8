check data_not_integer.ppl --data data_not_integer.json
