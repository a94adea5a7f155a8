run run_without_data.ppl --draws 10
