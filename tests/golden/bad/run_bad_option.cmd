run run_bad_option.ppl --data run_bad_option.json --chains many
