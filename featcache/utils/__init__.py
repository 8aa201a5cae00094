"""Plumbing every layer may use: progress bars, atomic writes, the one device resolver, safe loading, torchrun."""
