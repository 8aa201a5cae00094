"""Losses: triplet margin, distillation."""
