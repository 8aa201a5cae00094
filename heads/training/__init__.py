"""Training heads on the cache: config (the one KEY=VALUE parser), head data, checkpoints, one module per head, grids."""
