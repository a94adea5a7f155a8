check data_several_errors.ppl --data data_several_errors.json
