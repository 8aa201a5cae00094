"""The files of stage 1: the HDF5 schema, the feature-cache reader/writer, the temporal-cache reader, resumable parts."""
