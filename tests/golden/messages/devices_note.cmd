run no_sharded_plate.ppl --data no_sharded_plate.json --devices 4 --chains 1 --warmup 2 --draws 2 --quiet --out {tmp}/fit.npz
