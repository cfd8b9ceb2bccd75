"""seq2seq-rm: does a sequence-to-sequence reward model make RLHF better than a scalar one?"""

import os

from omegaconf import OmegaConf

__version__ = "0.1.0"

# `${pid:}` in the default run folders: two runs started in the same second never share a folder
if not OmegaConf.has_resolver("pid"):
    OmegaConf.register_new_resolver("pid", os.getpid)
