"""Networks for the RL systems: an MLP for vector observations, the DQN papers' CNNs for stacked Atari
frames, a Q-network with an optional dueling head and noisy layers, and the policies of REINFORCE:
categorical (discrete actions) and Gaussian (continuous actions).

Plain ``nn.Module`` classes without Lightning: the systems in ``rlgen/lightning_modules`` receive
them as typed ``__init__`` arguments. Input sizes that depend on the environment (observation size,
number of actions) are set by the system through ``build(obs_shape, n_actions)`` once the environment
is known, so a config only states the architecture (hidden sizes, dueling, ...).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from rlgen.errors import check_range

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
LinearFactory = Callable[[int, int], nn.Module]  # makes a fully connected layer (in_features, out_features)


class NoisyLinear(nn.Module):
    r"""A linear layer with learned, factorized Gaussian noise on its weights (Fortunato et al., "Noisy
    Networks for Exploration", ICLR 2018), the exploration of NoisyNet-DQN and Rainbow:

    .. math::
        y = (\mu^w + \sigma^w \odot \varepsilon^w) x + \mu^b + \sigma^b \odot \varepsilon^b, \qquad
        \varepsilon^w = f(\varepsilon_{out}) f(\varepsilon_{in})^\top, \ \varepsilon^b = f(\varepsilon_{out}),
        \ f(x) = \operatorname{sgn}(x) \sqrt{|x|}

    with :math:`\varepsilon_{in}, \varepsilon_{out}` standard normal, drawn afresh on every forward pass in
    training mode (one draw for the whole batch); in eval mode the layer is the mean, :math:`\mu^w x + \mu^b`.
    The noisy weight is never formed: :math:`(\sigma^w \odot \varepsilon^w) x = f(\varepsilon_{out}) \odot
    \sigma^w (f(\varepsilon_{in}) \odot x)`. Initialization as in the paper: :math:`\mu \sim U(\pm 1/\sqrt{p})`,
    :math:`\sigma = \sigma_0 / \sqrt{p}` for ``p = in_features``.

    Args:
        in_features: size of each input.
        out_features: size of each output.
        sigma0: the initial noise scale sigma_0 (the paper's 0.5; Rainbow implementations often use 0.1).
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        check_range("> 0", "NoisyLinear", sigma0=sigma0)
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))  # mu^w
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))  # mu^b
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = F.linear(x, self.weight, self.bias)  # (B, out)
        if not self.training:
            return mean
        out_features, in_features = self.weight.shape
        eps_in = _signed_sqrt(torch.randn(in_features, device=x.device))  # f(eps_in)
        eps_out = _signed_sqrt(torch.randn(out_features, device=x.device))  # f(eps_out)
        return mean + eps_out * (F.linear(x * eps_in, self.weight_sigma) + self.bias_sigma)  # (B, out)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


def _signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    return x.sign() * x.abs().sqrt()


def mlp(in_features: int, hidden_sizes: Sequence[int], out_features: int | None = None,
        activation: type[nn.Module] = nn.ReLU, linear: LinearFactory = nn.Linear) -> nn.Sequential:
    """``Linear -> activation`` for each hidden size, then an optional output ``Linear`` (no activation);
    ``linear`` makes each fully connected layer (e.g. a :class:`NoisyLinear`)."""
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [linear(in_features, size), activation()]
        in_features = size
    if out_features is not None:
        layers.append(linear(in_features, out_features))
    return nn.Sequential(*layers)


# The convolutions (out_channels, kernel, stride) of the two DQN papers' torsos, for 84x84 frames.
CNN_LAYERS = {
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),  # Mnih et al., Nature 2015: (B, 64, 7, 7) -> 3136
    "nips": ((16, 8, 4), (32, 4, 2)),  # Mnih et al., NIPS workshop 2013: (B, 32, 9, 9) -> 2592
}


class AtariCNN(nn.Module):
    """A DQN paper's torso: the convolutions of ``CNN_LAYERS[arch]``, then one fully connected layer.

    ``arch="nature"`` is the Nature DQN's (Mnih et al., 2015: 3 convolutions, 512 units);
    ``arch="nips"`` the first DQN's (Mnih et al., 2013: 2 convolutions, 256 units in the paper), whose
    gradient step costs about 0.4x as much on a CPU (``bench/dqn_step_cost.py``).

    Takes ``(B, C, 84, 84)`` frames; uint8 input is multiplied by ``pixel_scale`` here (to [0, 1] by
    default), so the replay buffer can keep its compact dtype all the way to the device.

    Args:
        in_channels: number of stacked frames.
        features: width of the last hidden layer.
        channels_last: keep the convolutions' weights in ``torch.channels_last`` memory layout (same
            values, other strides; the convolutions then run in that layout). Slightly faster on a CPU
            (``bench/dqn_step_cost.py``), and cuDNN prefers it under mixed precision.
        arch: ``nature`` or ``nips``: which paper's convolutions.
        pixel_scale: what uint8 pixels are multiplied by: 1/255 gives [0, 1] as in the DQN papers; 1 feeds
            the raw 0-255 values, as Tianshou's Atari DQN does. Without biases the network is linear in
            its input's scale, so 1 makes every layer's output about 255x larger at the start, and an
            Adam step of the last layer (a size that does not depend on the gradient's) moves Q 255x further.
        linear: makes the fully connected layer (``nn.Linear``, or a :class:`NoisyLinear`).
    """

    def __init__(self, in_channels: int = 4, features: int = 512, channels_last: bool = True,
                 arch: Literal["nature", "nips"] = "nature", pixel_scale: float = 1 / 255,
                 linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        check_range("> 0", "AtariCNN", pixel_scale=pixel_scale)
        self.out_features = features
        self.pixel_scale = pixel_scale
        layers: list[nn.Module] = []
        size = 84
        for out_channels, kernel, stride in CNN_LAYERS[arch]:
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride=stride), nn.ReLU()]
            in_channels, size = out_channels, (size - kernel) // stride + 1  # (B, out_channels, size, size)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = nn.Sequential(
            *layers,
            nn.Flatten(),  # (B, in_channels * size * size)
            linear(in_channels * size * size, features), nn.ReLU(),  # (B, features)
        ).to(memory_format=memory_format)  # .to(device) and load_state_dict keep the layout

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.dtype == torch.uint8:
            # A fresh float tensor, so scaling in place is safe. Converting straight into channels-last
            # would cost as much as a convolution; the first convolution changes the layout cheaply.
            obs = obs.float()  # (B, C, 84, 84)
            if self.pixel_scale != 1.0:  # raw pixels (scale 1, the Atari recipe) skip a pass over the batch
                obs.mul_(self.pixel_scale)  # in [0, 1] by default
        return self.net(obs)


class DuelingHead(nn.Module):
    """Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') (Wang et al., 2016), from a feature vector.

    With ``atoms`` K > 1 each action has K values (QR-DQN's quantiles), each combined this way on its own:
    the output is ``(B, A * K)``, action-major.

    Args:
        in_features: size of the feature vector.
        n_actions: number of discrete actions.
        hidden: hidden units of each stream (0: linear streams).
        atoms: values per action.
        linear: makes each fully connected layer (``nn.Linear``, or a :class:`NoisyLinear`).
    """

    def __init__(self, in_features: int, n_actions: int, hidden: int = 0, atoms: int = 1,
                 linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        sizes = [hidden] if hidden else []
        self.atoms = atoms
        self.value = mlp(in_features, sizes, atoms, linear=linear)
        self.advantage = mlp(in_features, sizes, n_actions * atoms, linear=linear)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        value = self.value(features).unsqueeze(1)  # (B, 1, K)
        advantage = self.advantage(features).unflatten(1, (-1, self.atoms))  # (B, A, K)
        return (value + advantage - advantage.mean(dim=1, keepdim=True)).flatten(1)  # (B, A * K)


class QNetwork(nn.Module):
    """Action values Q(s, .) for discrete actions: a torso (MLP or CNN) and a linear or dueling head, its
    fully connected layers optionally noisy (NoisyNet-DQN: exploration by :class:`NoisyLinear` layers).

    Built lazily: the system calls ``build(obs_shape, n_actions)`` once it knows the environment.
    Vector observations ``(B, D)`` get an MLP torso; image stacks ``(B, C, 84, 84)`` an :class:`AtariCNN`.

    Args:
        hidden_sizes: MLP hidden layers for vector observations (ignored for pixels).
        dueling: use a dueling value/advantage head instead of a linear one.
        cnn_features: width of the CNN's last hidden layer (pixels only).
        channels_last: run the CNN in ``torch.channels_last`` memory layout (pixels only; see ``AtariCNN``).
        cnn: the CNN's convolutions (pixels only): ``nature`` (Mnih et al., 2015) or ``nips`` (Mnih
            et al., 2013; about 0.4x the cost of a gradient step on a CPU).
        pixel_scale: what the CNN multiplies uint8 pixels by (pixels only; see ``AtariCNN``).
        noisy_std: 0 for plain linear layers; above 0, every fully connected layer (the MLP's or the
            CNN's, and the head's) is a :class:`NoisyLinear` with this initial sigma_0. Noisy while
            training (acting and the TD targets, fresh noise on each forward pass), the mean weights in
            evaluation. The paper acts with epsilon 0, the noise being the exploration.
    """

    def __init__(self, hidden_sizes: Sequence[int] = (256, 256), dueling: bool = False,
                 cnn_features: int = 512, channels_last: bool = True,
                 cnn: Literal["nature", "nips"] = "nature", pixel_scale: float = 1 / 255,
                 noisy_std: float = 0.0) -> None:
        super().__init__()
        check_range(">= 1", "QNetwork", hidden_sizes=hidden_sizes, cnn_features=cnn_features)
        check_range("> 0", "QNetwork", pixel_scale=pixel_scale)
        check_range(">= 0", "QNetwork", noisy_std=noisy_std)
        self.hidden_sizes = list(hidden_sizes)
        self.dueling = dueling
        self.cnn_features = cnn_features
        self.channels_last = channels_last
        self.cnn = cnn
        self.pixel_scale = pixel_scale
        self.noisy_std = noisy_std
        self.torso: nn.Module | None = None
        self.head: nn.Module | None = None

    atoms = 1  # head outputs per action (QuantileNetwork: its quantiles)

    def build(self, obs_shape: Sequence[int], n_actions: int) -> QNetwork:
        """Create the layers for observations of ``obs_shape`` and ``n_actions`` actions; returns self."""
        linear = functools.partial(NoisyLinear, sigma0=self.noisy_std) if self.noisy_std > 0 else nn.Linear
        if len(obs_shape) == 3:
            self.torso = AtariCNN(obs_shape[0], self.cnn_features, self.channels_last, self.cnn, self.pixel_scale,
                                  linear)
            features = self.cnn_features
        elif len(obs_shape) == 1:
            self.torso = mlp(obs_shape[0], self.hidden_sizes, linear=linear)
            features = self.hidden_sizes[-1] if self.hidden_sizes else obs_shape[0]
        else:
            raise ValueError(f"QNetwork takes vector (D,) or image (C, H, W) observations, got {tuple(obs_shape)}")
        k = self.atoms
        if self.dueling:
            self.head = DuelingHead(features, n_actions, atoms=k, linear=linear)
        else:
            self.head = linear(features, n_actions * k)
        return self

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        assert self.torso is not None, "call QNetwork.build(obs_shape, n_actions) before using it"
        return self.head(self.torso(obs.float() if obs.dtype == torch.float64 else obs))  # (B, A)


class QuantileNetwork(QNetwork):
    """The return distribution of each action as ``n_quantiles`` quantiles (QR-DQN, Dabney et al., 2018): the
    torso of :class:`QNetwork`, a head with ``n_quantiles`` outputs per action (a dueling head combines each
    quantile on its own). ``quantiles(obs)`` is ``(B, A, N)``; ``forward(obs)`` their mean, Q(s, .) ``(B, A)``, so
    whatever acts greedily on a :class:`QNetwork` acts on this one.

    Args:
        n_quantiles: quantiles N per action, at the fractions tau_i = (2i + 1) / 2N, i = 0 .. N-1.
        The others: as :class:`QNetwork`.
    """

    def __init__(self, n_quantiles: int = 200, hidden_sizes: Sequence[int] = (256, 256), dueling: bool = False,
                 cnn_features: int = 512, channels_last: bool = True,
                 cnn: Literal["nature", "nips"] = "nature", pixel_scale: float = 1 / 255,
                 noisy_std: float = 0.0) -> None:
        super().__init__(hidden_sizes, dueling, cnn_features, channels_last, cnn, pixel_scale, noisy_std)
        check_range(">= 1", "QuantileNetwork", n_quantiles=n_quantiles)
        self.n_quantiles = n_quantiles

    @property
    def atoms(self) -> int:
        return self.n_quantiles

    def quantiles(self, obs: torch.Tensor) -> torch.Tensor:
        """The quantiles theta_i(s, a) ``(B, A, N)``, at the fractions tau_i = (2i + 1) / 2N."""
        return super().forward(obs).unflatten(1, (-1, self.n_quantiles))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.quantiles(obs).mean(dim=2)  # (B, A): Q(s, a), the mean of the return distribution


class Policy(nn.Module):
    """What the policy-gradient systems (``Reinforce``, ``PPO``) need of a policy network: ``build(obs_shape,
    n_actions, value_head)`` creates the layers once the environment is known, ``built`` says whether it has, and
    ``distribution(obs)`` returns ``(pi(. | s), value (B,) or None)`` (``pi(obs)`` the first alone): a
    ``torch.distributions`` object whose ``log_prob``, ``entropy``, ``sample`` and ``mode`` are per state, so an
    algorithm never branches on the action space. :class:`CategoricalPolicy` (Discrete actions) gives a
    ``Categorical``, :class:`GaussianPolicy` (Box actions) a diagonal ``Normal`` whose action dimensions are one
    event (``log_prob`` sums over them). ``forward(obs)`` returns the raw ``(out (B, A), value (B,) or None)``:
    logits or means."""

    value: nn.Module | None  # V(s), set by the subclasses (None without a value head)

    def build(self, obs_shape: Sequence[int], n_actions: int, value_head: bool = False) -> Policy:
        raise NotImplementedError

    def _out(self) -> nn.Module | None:
        """The network of ``forward``'s first output (None before ``build``)."""
        raise NotImplementedError

    def _distribution(self, out: torch.Tensor) -> Distribution:
        """pi(. | s) from ``forward``'s first output ``(B, A)``."""
        raise NotImplementedError

    @property
    def built(self) -> bool:
        return self._out() is not None

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(out (B, A), value (B,) or None)``."""
        assert self.built, f"call {type(self).__name__}.build(obs_shape, ...) before using it"
        obs = obs.float()
        value = self.value(obs).squeeze(-1) if self.value is not None else None
        return self._out()(obs), value

    def distribution(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor | None]:
        """``(pi(. | s) with batch shape (B,), value (B,) or None)`` for observations ``(B, D)``."""
        out, value = self(obs)
        return self._distribution(out), value

    def pi(self, obs: torch.Tensor) -> Distribution:
        """pi(. | s) alone, batch shape (B,), for observations ``(B, D)``: the value network is not run (acting,
        greedy evaluation)."""
        assert self.built, f"call {type(self).__name__}.build(obs_shape, ...) before using it"
        return self._distribution(self._out()(obs.float()))

    def value_of(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) ``(B,)`` alone (the policy's layers are not run)."""
        assert self.value is not None, f"{type(self).__name__} was built without a value network"
        return self.value(obs.float()).squeeze(-1)

    def _init_orthogonal(self, out_gain: float) -> None:
        """Orthogonal weights and zero biases (Saxe et al. 2014), as the PPO implementations initialize
        (Engstrom et al. 2020; Huang et al. 2022): gain sqrt(2) in the hidden layers, ``out_gain`` in the
        policy's output layer, 1 in the value's."""
        for net, last_gain in ((self._out(), out_gain), (self.value, 1.0)):
            if not isinstance(net, nn.Sequential):
                continue
            linears = [m for m in net if isinstance(m, nn.Linear)]
            for i, layer in enumerate(linears):
                nn.init.orthogonal_(layer.weight, last_gain if i == len(linears) - 1 else math.sqrt(2))
                nn.init.zeros_(layer.bias)


class CategoricalPolicy(Policy):
    """Logits of pi(a | s) over discrete actions, with an optional state-value network for a baseline.

    Vector observations only (Pong from pixels arrives as a flat 6,400-vector of frame differences).
    The value network has its own hidden layers: sharing them with the policy lets the value's squared
    error (returns of ~100 on CartPole) swamp the policy's features.

    Args:
        hidden_sizes: MLP hidden layers of the policy (and of the value network).
        value_head: always add a V(s) network (``Reinforce`` asks ``build`` for one with ``baseline: value``).
        activation: the hidden layers' nonlinearity.
        orthogonal_init: orthogonal weights and zero biases, the policy's output layer scaled by 0.01 (the PPO
            implementations' initialization); False: PyTorch's default.
    """

    def __init__(self, hidden_sizes: Sequence[int] = (128,), value_head: bool = False,
                 activation: Literal["relu", "tanh"] = "relu", orthogonal_init: bool = False) -> None:
        super().__init__()
        check_range(">= 1", "CategoricalPolicy", hidden_sizes=hidden_sizes)
        self.hidden_sizes = list(hidden_sizes)
        self.value_head = value_head
        self.activation = activation
        self.orthogonal_init = orthogonal_init
        self.logits: nn.Module | None = None
        self.value: nn.Module | None = None

    def build(self, obs_shape: Sequence[int], n_actions: int, value_head: bool = False) -> CategoricalPolicy:
        """Create the layers for flat observations of ``obs_shape`` and ``n_actions`` actions, with a V(s)
        network if ``value_head`` (or the constructor's); returns self."""
        if len(obs_shape) != 1:
            raise ValueError(f"CategoricalPolicy takes flat (D,) observations, got {tuple(obs_shape)}")
        act = ACTIVATIONS[self.activation]
        self.logits = mlp(obs_shape[0], self.hidden_sizes, n_actions, activation=act)
        self.value = mlp(obs_shape[0], self.hidden_sizes, 1, activation=act) if self.value_head or value_head else None
        if self.orthogonal_init:
            self._init_orthogonal(out_gain=0.01)
        return self

    def _out(self) -> nn.Module | None:
        return self.logits  # forward: (logits (B, A), value (B,) or None)

    def _distribution(self, out: torch.Tensor) -> Distribution:
        return Categorical(logits=out, validate_args=False)  # pi(a | s) = softmax(z(s))_a; batch shape (B,)


class GaussianPolicy(Policy):
    """The mean mu(s) of a diagonal Gaussian pi(a | s) = N(mu(s), diag(sigma^2)) over continuous actions, with
    a learned log sigma that does not depend on the state, and an optional state-value network for a baseline.

    A state-independent sigma (one parameter per action dimension) is the choice of the PPO and TRPO papers'
    MuJoCo policies, CleanRL and Stable-Baselines3: the exploration noise shrinks as the policy gradient
    sees fit, and a bad state cannot blow up its own variance. The mean is unbounded; ``Reinforce`` clips the
    sampled action into the action space's bounds before the environment sees it. The mean's output layer
    starts at a hundredth of the default scale, so the first actions are ~N(0, init_std^2) everywhere.

    Args:
        hidden_sizes: MLP hidden layers of the mean (and of the value network).
        activation: the hidden layers' nonlinearity (``tanh``: the PPO/TRPO MuJoCo networks).
        init_std: sigma before training, in the action's own units (InvertedPendulum's force is in [-3, 3]).
        value_head: always add a V(s) network (``Reinforce`` asks ``build`` for one with ``baseline: value``).
        orthogonal_init: orthogonal weights and zero biases, the mean's output layer scaled by 0.01 (the PPO
            implementations' initialization); False: PyTorch's default, the output layer scaled by 0.01.
    """

    def __init__(self, hidden_sizes: Sequence[int] = (64, 64), activation: Literal["tanh", "relu"] = "tanh",
                 init_std: float = 1.0, value_head: bool = False, orthogonal_init: bool = False) -> None:
        super().__init__()
        check_range(">= 1", "GaussianPolicy", hidden_sizes=hidden_sizes)
        check_range("> 0", "GaussianPolicy", init_std=init_std)
        self.hidden_sizes = list(hidden_sizes)
        self.activation = activation
        self.init_std = init_std
        self.value_head = value_head
        self.orthogonal_init = orthogonal_init
        self.mean: nn.Sequential | None = None
        self.log_std: nn.Parameter | None = None
        self.value: nn.Module | None = None

    def build(self, obs_shape: Sequence[int], action_dim: int, value_head: bool = False) -> GaussianPolicy:
        """Create the layers for flat observations of ``obs_shape`` and ``action_dim`` action dimensions, with
        a V(s) network if ``value_head`` (or the constructor's); returns self."""
        if len(obs_shape) != 1:
            raise ValueError(f"GaussianPolicy takes flat (D,) observations, got {tuple(obs_shape)}")
        act = ACTIVATIONS[self.activation]
        self.mean = mlp(obs_shape[0], self.hidden_sizes, action_dim, activation=act)
        with torch.no_grad():  # the first actions: mean ~0, spread by init_std alone
            self.mean[-1].weight.mul_(0.01)
            self.mean[-1].bias.zero_()
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(self.init_std)))  # (A,)
        self.value = mlp(obs_shape[0], self.hidden_sizes, 1, activation=act) if self.value_head or value_head else None
        if self.orthogonal_init:
            self._init_orthogonal(out_gain=0.01)
        return self

    def _out(self) -> nn.Module | None:
        return self.mean  # forward: (mean (B, A), value (B,) or None); sigma is log_std.exp(), (A,) for every state

    def _distribution(self, out: torch.Tensor) -> Distribution:
        # N(mu(s), diag(sigma^2)) with the A action dimensions as one event: log_prob and entropy sum over them.
        # No argument checks (validate_args=False): they cost more than the tiny network at every env step.
        normal = Normal(out, self.log_std.exp().expand_as(out), validate_args=False)
        return Independent(normal, 1, validate_args=False)  # batch (B,), event (A,)
