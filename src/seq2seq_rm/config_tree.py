"""The composed config as a rich tree, printed at the start of a run and saved beside its results
(as lightning-hydra-template does)."""

from __future__ import annotations

from pathlib import Path

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

# the groups that say what the experiment is come first; the rest follow in config order
FIRST = ("task", "model", "rm", "sft", "ppo", "eval", "judge", "trainer", "callbacks", "logger")


def config_tree(cfg: DictConfig) -> rich.tree.Tree:
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    for name in [*(k for k in FIRST if k in cfg), *(k for k in cfg if k not in FIRST)]:
        branch = tree.add(name, style="bold", guide_style="dim")
        node = cfg[name]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
    return tree


def show_and_save(cfg: DictConfig, output_dir: Path, show: bool = True) -> Path:
    """Print the tree (unless ``show`` is false) and write it, without colours, to ``config_tree.txt``."""
    tree = config_tree(cfg)
    if show:
        rich.print(tree)
    path = Path(output_dir) / "config_tree.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        rich.print(tree, file=f)
    return path
