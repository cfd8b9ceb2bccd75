"""Tokenizers, sequence layouts, datasets and data modules."""
