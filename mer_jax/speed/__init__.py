"""Speed: the backend's tuning, CPU cores, host and device memory, the compile cache, strategy timing."""
