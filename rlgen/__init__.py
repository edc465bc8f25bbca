"""rlgen: classic deep RL and generative models as readable PyTorch Lightning modules."""

__version__ = "0.1.0"
