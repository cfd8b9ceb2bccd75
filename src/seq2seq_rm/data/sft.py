"""The SFT data module: demonstrations -> padded ``prompt <sep> response <eos>`` batches."""

from __future__ import annotations

from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from seq2seq_rm.data.layout import pad_batch, sft_example
from seq2seq_rm.data.tokenizer import encode, encode_prompt, special_ids
from seq2seq_rm.errors import DataError
from seq2seq_rm.tasks.base import Demonstration


def encode_demonstrations(
    demos: list[Demonstration], tokenizer: PreTrainedTokenizerBase, max_length: int, split: str
) -> list[dict[str, list[int]]]:
    ids = special_ids(tokenizer)
    rows = []
    for i, demo in enumerate(demos):
        row = sft_example(encode_prompt(tokenizer, demo.prompt.text), encode(tokenizer, demo.response), ids)
        if len(row["input_ids"]) > max_length:
            # truncating would train on a response cut mid-way: refuse instead
            raise DataError(f"SFT {split} demonstration {i} has {len(row['input_ids'])} tokens, more than "
                             f"the model's context of {max_length}; raise model.n_positions or shorten the task")
        rows.append(row)
    return rows


class SFTDataModule(L.LightningDataModule):
    def __init__(self, train: list[Demonstration], val: list[Demonstration], tokenizer: PreTrainedTokenizerBase,
                 batch_size: int, max_length: int, seed: int = 0) -> None:
        super().__init__()
        self.tokenizer, self.batch_size, self.seed = tokenizer, batch_size, seed
        self.train_rows = encode_demonstrations(train, tokenizer, max_length, "train")
        self.val_rows = encode_demonstrations(val, tokenizer, max_length, "val")
        self.collate = partial(pad_batch, pad_id=tokenizer.pad_token_id)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_rows, batch_size=self.batch_size, shuffle=True, generator=generator,
                          collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_rows, batch_size=self.batch_size, collate_fn=self.collate)
