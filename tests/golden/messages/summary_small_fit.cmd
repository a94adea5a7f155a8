summary small_fit.npz
