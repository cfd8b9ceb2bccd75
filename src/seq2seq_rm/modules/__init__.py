"""LightningModules: SFT policy (reward models and PPO arrive with their stages)."""
