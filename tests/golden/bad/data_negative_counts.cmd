check data_negative_counts.ppl --data data_negative_counts.json
