check data_bernoulli_values.ppl --data data_bernoulli_values.json
