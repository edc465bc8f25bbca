"""Networks of Soft Actor-Critic: a tanh-squashed Gaussian actor and a set of Q critics over (s, a).

Plain ``nn.Module`` classes without Lightning, injected into :class:`rlgen.lightning_modules.sac.SAC`, and
sized by it through ``build(obs_shape, action_dim)`` once the environment is known. Actions here are in the
squashed units [-1, 1]^A; the system rescales them to the environment's ``Box`` bounds.

The actor returns a distribution, :class:`TanhNormal`, so the algorithm takes samples and log-probabilities from
it without knowing how the squashing works.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Normal, constraints

from rlgen.errors import RlgenError, check_range
from rlgen.nets.rl import mlp


def tanh_log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)^2)``, elementwise, in the stable form ``2 (log 2 - u - softplus(-2u))``.

    The naive form is ``-inf`` once ``tanh(u)`` rounds to 1 (from ``|u| > 9`` in float32); this one stays
    exact: ``1 - tanh(u)^2 = 4 / (e^u + e^-u)^2``, whose log is ``2 log 2 - 2 log(e^u + e^-u)`` and
    ``log(e^u + e^-u) = u + softplus(-2u)``.
    """
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


class TanhNormal(Distribution):
    """``a = tanh(u)``, ``u ~ N(loc, diag(scale^2))``: a diagonal Gaussian squashed into (-1, 1)^A.

    By the change of variables, ``log pi(a) = sum_i [log N(u_i; loc_i, scale_i) - log(1 - tanh(u_i)^2)]``
    (Haarnoja et al. 2018, appendix C), the Jacobian term in the stable form of :func:`tanh_log_det_jacobian`.
    The event is the action vector: ``log_prob`` sums over its last dimension.

    ``rsample`` is reparameterized (``u = loc + scale * eps``), so gradients reach ``loc`` and ``scale``. The log-
    probability of the sample just drawn is computed from its ``u`` (kept from ``rsample``), never from
    ``atanh(a)``, which loses ``u`` where ``tanh`` saturates; any other value goes through a clamped ``atanh``.

    Args:
        loc: ``(..., A)`` means of ``u``.
        scale: ``(..., A)`` standard deviations of ``u`` (positive).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.independent(constraints.interval(-1.0, 1.0), 1)
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = None) -> None:
        self.normal = Normal(loc, scale, validate_args=validate_args)
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (a, u) of the latest rsample
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=validate_args)

    @property
    def loc(self) -> torch.Tensor:
        return self.normal.loc

    @property
    def scale(self) -> torch.Tensor:
        return self.normal.scale

    @property
    def mode(self) -> torch.Tensor:
        """``tanh(loc)``, the action of the greedy policy (SAC's evaluation), ``(..., A)``."""
        return torch.tanh(self.loc)

    def rsample(self, sample_shape: torch.Size | Sequence[int] = ()) -> torch.Tensor:
        u = self.normal.rsample(torch.Size(sample_shape))  # (*sample_shape, ..., A)
        a = torch.tanh(u)
        self._last = (a, u)
        return a

    def sample(self, sample_shape: torch.Size | Sequence[int] = ()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``(...)``: log pi(a) of actions ``(..., A)``, summed over the action dimensions."""
        if self._last is not None and value is self._last[0]:
            u = self._last[1]
        else:
            eps = torch.finfo(value.dtype).eps
            u = torch.atanh(value.clamp(-1.0 + eps, 1.0 - eps))
        return (self.normal.log_prob(u) - tanh_log_det_jacobian(u)).sum(dim=-1)

    def rsample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized sample ``(..., A)`` and its log-probability ``(...)``."""
        a = self.rsample()
        return a, self.log_prob(a)


class SquashedGaussianActor(nn.Module):
    """pi(a | s) = tanh(N(mu(s), diag(sigma(s)^2))): an MLP with two heads, the mean and the log standard
    deviation of ``u``, both depending on the state (SAC's actor, Haarnoja et al. 2018).

    ``log sigma`` stays within ``[log_std_min, log_std_max]``: a state cannot make its own Gaussian vanish or
    explode. ``log_std_bound`` says how: ``clip`` clips the head's output x to the bounds, as the authors' code
    (softlearning) does; ``tanh`` maps it smoothly onto them, ``log sigma = min + (max - min) (tanh(x) + 1) / 2``
    (Spinning Up, D. Yarats' SAC, CleanRL): the gradient never vanishes at a bound, and sigma starts near the
    middle of the range (exp(-1.5) = 0.22 for [-5, 2]) instead of near exp(0) = 1.

    Args:
        hidden_sizes: hidden layers of the shared MLP.
        log_std_min: lower bound of log sigma.
        log_std_max: upper bound of log sigma.
        log_std_bound: ``clip`` or ``tanh``, how log sigma is kept within the bounds.
    """

    def __init__(self, hidden_sizes: Sequence[int] = (256, 256), log_std_min: float = -20.0,
                 log_std_max: float = 2.0, log_std_bound: Literal["clip", "tanh"] = "clip") -> None:
        super().__init__()
        check_range(">= 1", "SquashedGaussianActor", hidden_sizes=hidden_sizes)
        if not log_std_min < log_std_max:
            raise RlgenError(f"SquashedGaussianActor.log_std_min must be < log_std_max, got {log_std_min} >= "
                             f"{log_std_max}")
        if log_std_bound not in ("clip", "tanh"):
            raise RlgenError(f"SquashedGaussianActor.log_std_bound must be 'clip' or 'tanh', got {log_std_bound!r}")
        self.hidden_sizes = list(hidden_sizes)
        self.log_std_min, self.log_std_max, self.log_std_bound = log_std_min, log_std_max, log_std_bound
        self.torso: nn.Module | None = None
        self.mean: nn.Module | None = None
        self.log_std: nn.Module | None = None

    @property
    def built(self) -> bool:
        return self.torso is not None

    def build(self, obs_shape: Sequence[int], action_dim: int) -> SquashedGaussianActor:
        """Create the layers for flat observations of ``obs_shape`` and ``action_dim`` actions; returns self."""
        if len(obs_shape) != 1:
            raise ValueError(f"SquashedGaussianActor takes flat (D,) observations, got {tuple(obs_shape)}")
        self.torso = mlp(obs_shape[0], self.hidden_sizes)
        self.mean = nn.Linear(self.hidden_sizes[-1], action_dim)
        self.log_std = nn.Linear(self.hidden_sizes[-1], action_dim)
        return self

    def forward(self, obs: torch.Tensor) -> TanhNormal:
        """pi(. | s) for observations ``(B, D)``: a :class:`TanhNormal` over ``(B, A)`` actions in (-1, 1)."""
        assert self.built, "call SquashedGaussianActor.build(obs_shape, action_dim) before using it"
        features = self.torso(obs.float())  # (B, H)
        x = self.log_std(features)  # (B, A)
        if self.log_std_bound == "tanh":
            log_std = self.log_std_min + (self.log_std_max - self.log_std_min) * 0.5 * (torch.tanh(x) + 1.0)
        else:
            log_std = x.clamp(self.log_std_min, self.log_std_max)
        # No argument checks (validate_args=False): SAC builds three of these per gradient step and one per env
        # step, where the checks cost more than the distribution's arithmetic.
        return TanhNormal(self.mean(features), log_std.exp(), validate_args=False)


class QCritics(nn.Module):
    """``num_critics`` independent Q-networks Q_j(s, a), each an MLP on the concatenated ``[s, a]``, evaluated
    together.

    SAC uses two (clipped double Q, Fujimoto et al. 2018): the minimum of the two counters the
    overestimation that maximizing over one noisy estimate causes. Each network has its own initialization
    (``nn.Linear``'s: weights and biases uniform in +-1/sqrt(fan_in)) and its own weights; the networks' layers
    are stacked, ``weights[i]`` of shape ``(J, in, out)``, so that one batched matrix product
    (``torch.baddbmm``) computes a layer of all J networks: on 2 CPU threads the twin critics' forward and
    backward pass take about a quarter less time than two separate MLPs' (one small product per thread
    instead of two split across both).

    Args:
        hidden_sizes: hidden layers of each Q-network.
        num_critics: how many Q-networks (2: SAC's twin critics).
    """

    def __init__(self, hidden_sizes: Sequence[int] = (256, 256), num_critics: int = 2) -> None:
        super().__init__()
        check_range(">= 1", "QCritics", hidden_sizes=hidden_sizes, num_critics=num_critics)
        self.hidden_sizes = list(hidden_sizes)
        self.num_critics = num_critics
        self.weights: nn.ParameterList | None = None  # layer i: (J, in_i, out_i)
        self.biases: nn.ParameterList | None = None  # layer i: (J, 1, out_i)
        # checkpoints written before the critics were stacked (one nn.Sequential per critic) still load
        self.register_load_state_dict_pre_hook(_stack_separate_critics)

    @property
    def built(self) -> bool:
        return self.weights is not None

    def build(self, obs_shape: Sequence[int], action_dim: int) -> QCritics:
        """Create the layers for flat observations of ``obs_shape`` and ``action_dim`` actions; returns self."""
        if len(obs_shape) != 1:
            raise ValueError(f"QCritics takes flat (D,) observations, got {tuple(obs_shape)}")
        sizes = [obs_shape[0] + action_dim, *self.hidden_sizes, 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialization, drawn for each critic
            self.weights.append(nn.Parameter(torch.empty(self.num_critics, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(self.num_critics, 1, fan_out).uniform_(-bound, bound)))
        return self

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q_j(s, a) for observations ``(B, D)`` and actions ``(B, A)``: ``(num_critics, B)``."""
        assert self.built, "call QCritics.build(obs_shape, action_dim) before using it"
        x = torch.cat([obs.float(), action], dim=-1)  # (B, D + A)
        h = x.expand(self.num_critics, *x.shape)  # (J, B, D + A): every critic sees the same input
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(bias, h, weight)  # (J, B, out_i) = b_j + h_j W_j, for each critic j
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)  # (num_critics, B)


def _stack_separate_critics(module: QCritics, state_dict: dict, prefix: str, *args: object) -> None:
    """Rewrites an older checkpoint's critics, ``q.<j>.<2i>.weight (out, in)`` and ``.bias (out,)`` of critic j's
    i-th ``nn.Linear``, into the stacked ``weights.<i> (J, in, out)`` and ``biases.<i> (J, 1, out)``."""
    if f"{prefix}q.0.0.weight" not in state_dict:
        return
    for i in range(len(module.hidden_sizes) + 1):
        for name, stacked in (("weight", f"{prefix}weights.{i}"), ("bias", f"{prefix}biases.{i}")):
            old = [state_dict.pop(f"{prefix}q.{j}.{2 * i}.{name}") for j in range(module.num_critics)]
            state_dict[stacked] = torch.stack([t.T if name == "weight" else t.unsqueeze(0) for t in old])
