check data_invalid_json.ppl --data data_invalid_json.json
