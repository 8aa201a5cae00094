"""Experiments built on trained heads: baselines, the oracle, the demo, the report."""
