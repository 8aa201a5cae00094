"""Layers that hold G members side by side (stacked linear, batch norm, dropout, noise) and their per-member randomness."""
