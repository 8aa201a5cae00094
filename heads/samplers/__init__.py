"""Batch samplers: P x K batches, co-class positives."""
