"""End-to-end fine-tuning: the engine, temporal fine-tuning, TSN, image datasets."""
