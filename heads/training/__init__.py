"""Training heads on the cache: the settings table and resolver, the head-method registry, head data, checkpoints, one module per head, grids."""
