check data_not_a_data_file.ppl --data data_not_a_data_file.csv
