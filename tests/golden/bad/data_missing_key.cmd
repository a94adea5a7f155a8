check data_missing_key.ppl --data data_missing_key.json
