check no_sharded_plate.ppl --data no_sharded_plate.json
