"""Pure PPO math on (batch, time) tensors with a response mask."""
