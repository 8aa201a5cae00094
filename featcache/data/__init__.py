"""Datasets in the folder layout: reading, checking, importing, generating (synth) and mid-frames; mirrors `featcache data`."""
