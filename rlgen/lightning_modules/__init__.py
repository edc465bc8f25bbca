"""LightningModules, one file per algorithm family, and the base classes to extend.

Each algorithm is importable from here (``from rlgen.lightning_modules import DQN``) and, in a config, by
its class name or full path (``class_path: rlgen.lightning_modules.dqn.DQN``). A new algorithm subclasses
:class:`RLSystem`, :class:`GANSystem` or :class:`RlgenModule` (the contract with the CLI): see ``docs/extending.md``.
"""

from rlgen.lightning_modules.autoencoder import AutoEncoder, DenoisingAutoEncoder
from rlgen.lightning_modules.base import RlgenModule
from rlgen.lightning_modules.classifier import Classifier
from rlgen.lightning_modules.cyclegan import CycleGAN
from rlgen.lightning_modules.dqn import DQN
from rlgen.lightning_modules.gan import GAN
from rlgen.lightning_modules.gan_system import GANSystem
from rlgen.lightning_modules.ppo import PPO
from rlgen.lightning_modules.qlearning import TabularQLearning
from rlgen.lightning_modules.qrdqn import QRDQN
from rlgen.lightning_modules.reinforce import Reinforce
from rlgen.lightning_modules.rl_system import RLSystem
from rlgen.lightning_modules.sac import SAC
from rlgen.lightning_modules.textgan import TextGAN
from rlgen.lightning_modules.vae import VAE

__all__ = [
    # reinforcement learning
    "TabularQLearning",
    "DQN",
    "QRDQN",
    "Reinforce",
    "PPO",
    "SAC",
    # generative models
    "AutoEncoder",
    "DenoisingAutoEncoder",
    "VAE",
    "GAN",
    "TextGAN",
    "CycleGAN",
    # the yardstick of the GAN metrics
    "Classifier",
    # base classes to extend (RlgenModule: what every rlgen model declares to the CLI)
    "RlgenModule",
    "RLSystem",
    "GANSystem",
]
