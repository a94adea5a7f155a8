check data_rank.ppl --data data_rank.json
