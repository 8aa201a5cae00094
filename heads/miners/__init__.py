"""Semi-hard triplet miners (brute force reference, FAISS)."""
