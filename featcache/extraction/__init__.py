"""Stage 1's last step: backbone features (and logits) of stills, dynamic images and flow stacks into HDF5; key frames."""
