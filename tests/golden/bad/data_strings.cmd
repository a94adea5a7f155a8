check data_strings.ppl --data data_strings.json
