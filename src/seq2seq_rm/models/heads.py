"""A causal LM with a scalar head: the Bradley-Terry reward model (and, later, PPO's value head)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from seq2seq_rm.errors import UserError
from seq2seq_rm.models import last_block
from seq2seq_rm.models.backbone import load_backbone
from seq2seq_rm.models.lora import merge_lora
from seq2seq_rm.models.shared_prompt import continuation_outputs

RM_TYPE_FILE = "rm_type.json"


class ScalarHeadModel(nn.Module):
    """Scores each position with a linear head on the backbone's last hidden state."""

    def __init__(self, lm: PreTrainedModel) -> None:
        super().__init__()
        self.lm = lm
        self.head = nn.Linear(lm.config.hidden_size, 1)
        nn.init.normal_(self.head.weight, std=1.0 / (lm.config.hidden_size + 1) ** 0.5)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._score(self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)

    def score_last(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Score at the last non-padding token of each right-padded row; the trunk's last block runs only there
        where ``last_block.supports`` it (the same scores)."""
        last = attention_mask.sum(1) - 1
        trunk = self.lm.base_model
        if not last_block.supports(trunk):
            return self(input_ids, attention_mask)[torch.arange(input_ids.shape[0]), last]
        with last_block.deferred_last_block(trunk) as calls:
            trunk(input_ids=input_ids, attention_mask=attention_mask)
        return self._score(last_block.final_hidden_at(trunk, calls, last, attention_mask * _up_to(last, input_ids)))

    def score_responses(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor,
                        response_mask: torch.Tensor, share_prompt: bool = True) -> torch.Tensor:
        """Scores at the last non-padding token of each response, where prompt ``i`` (left-padded) is answered by
        the right-padded responses in rows ``i*k .. i*k + k - 1``; each prompt runs once for its ``k`` responses
        (``continuation_outputs``), and the trunk's last block runs only at the scored tokens where
        ``last_block.supports`` it. The same scores and gradients as the whole trunk on the full sequences."""
        trunk, last = self.lm.base_model, response_mask.sum(1) - 1
        if not last_block.supports(trunk):
            hidden = continuation_outputs(trunk, "last_hidden_state", prompt_ids, prompt_mask, response_ids,
                                          response_mask, share_prompt=share_prompt)
            return self._score(hidden[torch.arange(hidden.shape[0]), last])
        with last_block.deferred_last_block(trunk) as calls:
            continuation_outputs(trunk, "last_hidden_state", prompt_ids, prompt_mask, response_ids, response_mask,
                                 share_prompt=share_prompt)
        # the same keys whether the prompt ran once (two calls) or inside each full sequence (one call)
        key_mask = torch.cat([prompt_mask.repeat_interleave(len(last) // len(prompt_mask), 0),
                              response_mask * _up_to(last, response_ids)], 1)
        index = last if len(calls) == 2 else last + prompt_ids.shape[1]
        return self._score(last_block.final_hidden_at(trunk, calls, index, key_mask))

    def _score(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head(hidden).squeeze(-1)


def _up_to(last: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """1 at the positions up to and including ``last[b]`` of each row, 0 after."""
    return (torch.arange(ids.shape[1], device=ids.device) <= last[:, None]).long()


def write_rm_type(directory: Path, rm_type: str) -> None:
    (Path(directory) / RM_TYPE_FILE).write_text(json.dumps({"type": rm_type}))


class CheckpointError(UserError, ValueError):
    """A folder that is not the reward-model checkpoint it is used as."""


def read_rm_type(directory: Path) -> str:
    path = Path(directory) / RM_TYPE_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a reward-model checkpoint: {RM_TYPE_FILE} is missing")
    try:
        found = json.loads(path.read_text())["type"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: field 'type' cannot be read ({type(error).__name__}: {error})") from None
    if found not in ("scalar", "seq2seq"):
        raise CheckpointError(f"{path}: field 'type' is {found!r}; expected 'scalar' or 'seq2seq'")
    return found


def save_scalar_head(model: ScalarHeadModel, directory: Path) -> None:
    merge_lora(model.lm).save_pretrained(directory, safe_serialization=True)
    head = {k: v.contiguous() for k, v in model.head.state_dict().items()}
    save_file(head, str(Path(directory) / "head.safetensors"))


def load_scalar_head(directory: Path) -> ScalarHeadModel:
    model = ScalarHeadModel(load_backbone(directory))
    model.head.load_state_dict(load_file(str(Path(directory) / "head.safetensors")))
    return model
