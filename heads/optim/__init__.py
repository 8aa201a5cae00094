"""Optimizers over stacked members (one optimizer step for a whole grid)."""
