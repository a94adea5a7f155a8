check data_label_out_of_support.ppl --data data_label_out_of_support.json
