"""Measuring and recording: accuracies and fusion, metrics.json, bootstrap CIs and paired tests, calibration, learning curves."""
