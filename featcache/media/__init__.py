"""Decoding: images and videos (files, GIFs, frame folders) to uint8 arrays."""
