check no_such_model.ppl
