run run_too_many_devices.ppl --data run_too_many_devices.json --devices 64 --chains 1 --warmup 1 --draws 1
