"""Applying trained runs to new images: :func:`heads.inference.loaded_run.load_run` (``featcache predict``)."""
