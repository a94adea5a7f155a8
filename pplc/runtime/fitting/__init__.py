"""Fits other than MCMC on the model's log density: MAP by L-BFGS, the Laplace approximation, ADVI."""
