"""seq2seq-rm: does a sequence-to-sequence reward model make RLHF better than a scalar one?"""

__version__ = "0.1.0"
