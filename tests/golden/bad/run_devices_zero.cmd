run run_devices_zero.ppl --data run_devices_zero.json --devices 0
