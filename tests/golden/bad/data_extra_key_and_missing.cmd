check data_extra_key_and_missing.ppl --data data_extra_key_and_missing.json
