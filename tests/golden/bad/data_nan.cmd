check data_nan.ppl --data data_nan.json
