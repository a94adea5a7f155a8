check model_not_text.ppl
