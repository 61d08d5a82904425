"""Policy building blocks that SB3's ``MlpPolicy`` lacks: a shared trunk, lookahead features.

Since SB3 1.8 the actor and critic of ``MlpPolicy`` never share hidden layers;
sharing happens through the features extractor. ``SharedTrunk`` is that
extractor: ``shared_trunk: [128]`` in a study puts one 128-unit layer under both
heads (with ``share_features_extractor=True``), so "shared or separate" is a
choice a study can search. ``lookahead: 1|2`` in a study gives the network each
move's exact consequences beside the 14 counts, without weights: the env computes
them once per step (``env/features.py``) and :class:`PrecomputedLookahead` reads
them. :class:`Lookahead`, which computed the same features in its forward pass (in
every PPO epoch again), is kept for model files saved before, for SB3's own
loader, and as the reference the features are tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from env.features import PER_MOVE, feature_count
from env.observation import OBS_SIZE, Observation
from env.options import DEFAULT_STONES
from env.rules import BOARD_SIZE, N_PITS, opposite, pits_of, side_of, store_of


def _mlp(n_in: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    return nn.Sequential(*layers)


class SharedTrunk(BaseFeaturesExtractor):
    """An MLP whose output feeds both the policy and the value head."""

    def __init__(self, observation_space: gym.Space, hidden: Sequence[int] = (64,)) -> None:
        hidden = list(hidden)
        super().__init__(observation_space, features_dim=hidden[-1])
        self.net = _mlp(get_flattened_obs_dim(observation_space), hidden)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


# --- exact lookahead features --------------------------------------------------------

# In the mover's view a board is laid out as player 0's absolute board: own pits,
# own store, the opponent's pits, the opponent's store (env/observation.py).
_OWN_PITS, _OPP_PITS = pits_of(0), pits_of(1)
_OWN_STORE, _OPP_STORE = store_of(0), store_of(1)
_CYCLE = BOARD_SIZE - 1  # the holes a mover sows into: all but the opponent's store


def _sow_all(counts: torch.Tensor, empty_capture: bool) -> tuple[torch.Tensor, ...]:
    """Every one of the mover's six moves applied at once, in the mover's view.

    ``counts`` is ``(n, 14)`` seed counts ``[own pits, own store, opp pits, opp
    store]``. Returns ``(after, legal, extra, over)``: ``(n, 6, 14)`` boards after
    each move and ``(n, 6)`` flags. The rules are env/rules.py's, in closed form
    (a pit with ``s`` seeds drops ``floor((s - d) / 13) + 1`` seeds in the hole
    ``d`` steps on), so that a batch of boards is a handful of tensor operations;
    tests check it against the rules engine move by move.
    """
    n = counts.shape[0]
    dev = counts.device
    pits = torch.arange(N_PITS, device=dev)
    holes = torch.arange(_CYCLE, device=dev)
    dist = (holes[None, :] - pits[:, None]) % _CYCLE
    dist = torch.where(dist == 0, torch.full_like(dist, _CYCLE), dist)  # (6, 13)
    seeds = counts[:, _OWN_PITS]  # (n, 6)
    dropped = torch.clamp(
        torch.div(seeds[:, :, None] - dist[None], _CYCLE, rounding_mode="floor") + 1, min=0
    )  # (n, 6, 13)
    after = counts[:, None, :].expand(n, N_PITS, BOARD_SIZE).clone()
    emptied = 1 - torch.eye(N_PITS, device=dev, dtype=counts.dtype)  # the pit sown from
    after[:, :, _OWN_PITS] = after[:, :, _OWN_PITS] * emptied
    after[:, :, :_CYCLE] += dropped
    legal = seeds > 0
    last = (pits[None, :] + seeds.long()) % _CYCLE  # (n, 6)
    extra = legal & (last == _OWN_STORE)
    last_pit = last.clamp(max=N_PITS - 1)
    across = opposite(last_pit)
    lone = after.gather(2, last_pit[:, :, None])[..., 0] == 1
    opp_seeds = after.gather(2, across[:, :, None])[..., 0]
    capture = legal & (last < N_PITS) & lone & ((opp_seeds > 0) | empty_capture)
    taken = capture.to(counts.dtype)
    one_hot = torch.nn.functional.one_hot
    cleared = (one_hot(last_pit, BOARD_SIZE) + one_hot(across, BOARD_SIZE)).to(counts.dtype)
    after = after - taken[..., None] * cleared * after
    after[:, :, _OWN_STORE] += taken * (opp_seeds + 1)
    own_left = after[:, :, _OWN_PITS].sum(-1)
    opp_left = after[:, :, _OPP_PITS].sum(-1)
    over = legal & ((own_left == 0) | (opp_left == 0))
    swept = after.clone()  # rule 4: every seed left goes to its side's store
    swept[:, :, _OWN_STORE] += own_left
    swept[:, :, _OPP_STORE] += opp_left
    swept[:, :, _OWN_PITS] = 0
    swept[:, :, _OPP_PITS] = 0
    after = torch.where(over[..., None], swept, after)
    return after, legal, extra & ~over, over


def _flip(view: torch.Tensor) -> torch.Tensor:
    """The same board seen from the other seat."""
    return torch.cat([view[..., side_of(1)], view[..., side_of(0)]], dim=-1)


class _LookaheadFeatures(BaseFeaturesExtractor):
    """What both lookahead extractors share: their settings, and an optional trunk over
    the counts and features (``hidden``, as :class:`SharedTrunk`). They differ only in
    where the features come from (:meth:`features`), so the weights of one load into
    the other unchanged."""

    def __init__(
        self,
        observation_space: gym.Space,
        n_features: int,
        plies: int,
        stones: int,
        empty_capture: bool,
        hidden: Sequence[int],
    ) -> None:
        hidden = list(hidden)
        super().__init__(observation_space, features_dim=hidden[-1] if hidden else n_features)
        self.trunk = _mlp(n_features, hidden) if hidden else None
        self.plies = int(plies)
        self.stones = int(stones)
        self.empty_capture = bool(empty_capture)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        features = self.features(observations)
        return self.trunk(features) if self.trunk is not None else features

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Lookahead(_LookaheadFeatures):
    """The board plus, for each of the six moves, what it leads to, computed in torch.

    Why the features: an MLP on 14 seed counts must learn sowing arithmetic (where
    the last seed lands, mod 13) before it can learn strategy; PPO spends millions
    of steps on it. These features give the exact consequences of each move
    (``plies=1``: the board after it, whether it is legal, earns another move, or
    ends the game) and, with ``plies=2``, the best immediate store gain of whoever
    moves next (negative when that is the opponent). The policy still chooses;
    nothing searches at play time beyond these two plies.

    This extractor computes them from the 14 counts in its forward pass, so PPO
    pays for them in every epoch and minibatch; training now uses
    :class:`PrecomputedLookahead` over features the env computed once per step.
    It stays for models saved with it (``env/policy_files.py`` loads them into the
    new network with the same weights), for SB3's own loader, as the reference the
    env's features are tested against, and as the benchmark's former path.
    ``hidden`` puts a shared trunk (as :class:`SharedTrunk`) over the features.
    """

    PER_MOVE: ClassVar[dict[int, int]] = PER_MOVE

    def __init__(
        self,
        observation_space: gym.Space,
        plies: int = 2,
        stones: int = DEFAULT_STONES,
        empty_capture: bool = False,
        hidden: Sequence[int] = (),
        *,
        seeds: int | None = None,
    ) -> None:
        # Model files saved before stones per pit were called stones name them seeds, and
        # SB3's own loader passes the saved keywords back: they keep loading.
        stones = stones if seeds is None else seeds
        if plies not in self.PER_MOVE:
            raise ValueError(f"lookahead: expected 1 or 2 plies, but got {plies!r}")
        n_features = get_flattened_obs_dim(observation_space) + N_PITS * self.PER_MOVE[plies]
        super().__init__(observation_space, n_features, plies, stones, empty_capture, hidden)

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        """The counts and each move's features, before the trunk (if any)."""
        obs = observations.reshape(observations.shape[0], -1)
        counts = torch.round(obs * self.stones)
        after, legal, extra, over = _sow_all(counts, self.empty_capture)
        flags = torch.stack([legal, extra, over], dim=-1).to(obs.dtype)
        parts = [after / self.stones, flags]
        if self.plies == 2:
            parts.append(self._reply_features(after, extra, over, obs.dtype))
        per_move = torch.cat(parts, dim=-1)  # (n, 6, PER_MOVE)
        return torch.cat([obs, per_move.reshape(obs.shape[0], -1)], dim=-1)

    def _reply_features(
        self, after: torch.Tensor, extra: torch.Tensor, over: torch.Tensor, dtype: torch.dtype
    ) -> torch.Tensor:
        """Next mover's best one-move store gain and whether it can move again."""
        n = after.shape[0]
        nxt = torch.where(extra[..., None], after, _flip(after)).reshape(n * N_PITS, BOARD_SIZE)
        after2, legal2, extra2, _ = _sow_all(nxt, self.empty_capture)
        gain = after2[:, :, _OWN_STORE] - nxt[:, None, _OWN_STORE]
        gain = torch.where(legal2, gain, torch.full_like(gain, -1.0))
        best = gain.max(dim=1).values.clamp(min=0).reshape(n, N_PITS)
        again = extra2.any(dim=1).reshape(n, N_PITS).to(dtype)  # extra implies legal
        sign = torch.where(extra, 1.0, -1.0).to(dtype)
        live = (~over).to(dtype)
        return torch.stack([sign * best / self.stones * live, sign * again * live], dim=-1)


class PrecomputedLookahead(_LookaheadFeatures):
    """Reads the counts and the lookahead features the env computed (no weights).

    Why: the features depend on the board alone, so they are computed once per
    environment step, for all games in one numba call (``env/features.py``), and
    stored in the rollout buffer with the observation; the PPO update then reads
    them in every epoch instead of recomputing them (what :class:`Lookahead`
    does). The observation is the counts followed by the features
    (:class:`env.observation.Observation` with ``lookahead=plies``); its keyword
    arguments are :class:`Lookahead`'s, so a model file names what its network
    expects, and ``hidden`` puts the same shared trunk over the features (the
    weights of a ``Lookahead`` network load into this one unchanged).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        plies: int = 2,
        stones: int = DEFAULT_STONES,
        empty_capture: bool = False,
        hidden: Sequence[int] = (),
        *,
        seeds: int | None = None,
    ) -> None:
        stones = stones if seeds is None else seeds  # as Lookahead: the older name
        n_features = OBS_SIZE + feature_count(plies)
        found = get_flattened_obs_dim(observation_space)
        if found != n_features:
            raise ValueError(
                f"lookahead {plies}: expected observations of {n_features} values (the "
                f"counts and each move's features), but got {found}; build the env with "
                f"lookahead={plies}"
            )
        super().__init__(observation_space, n_features, plies, stones, empty_capture, hidden)

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        """The counts and each move's features, as the env computed them."""
        return observations.reshape(observations.shape[0], -1)


def expected_observation(policy: Any, stones: int = DEFAULT_STONES) -> Observation:
    """What ``policy`` (an SB3 policy, or a model holding one) must be shown.

    A :class:`PrecomputedLookahead` network reads the features after the counts;
    every other network (``Lookahead`` included, which computes them itself)
    reads the 14 counts.
    """
    policy = getattr(policy, "policy", policy)
    extractor = getattr(policy, "features_extractor", None)
    if isinstance(extractor, PrecomputedLookahead):
        return Observation(stones, extractor.plies, extractor.empty_capture)
    return Observation(stones)


_MASKED_LOGIT = -1.0e8  # what sb3-contrib's MaskableCategorical gives a masked action


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The modules a ``Sequential`` (nested or not) applies, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


class PolicyActor:
    """The actions ``policy.predict(observations, action_masks=masks)`` picks, made faster.

    Why: a league's policy opponents (every pool snapshot, the learner) act once per
    ply each, on a few games, and ``predict`` then costs several times the network
    itself: it switches every module to eval mode, checks the observation, calls
    each layer through ``nn.Module``'s hook machinery, and builds two
    ``torch.distributions`` objects per call. Here the same tensor operations run
    in the same order (the actor's layers, each by its own ``forward``; sb3-contrib's
    masking: normalized logits, masked ones set to -1e8 and normalized again; then
    the softmax's argmax or one ``torch.multinomial`` draw), so the actions, and
    the random numbers drawn, are ``predict``'s own (a test compares them). Built
    once per opponent; the layers read the policy's current weights at each call.
    """

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.extractor = policy.pi_features_extractor
        layers = [*_leaves(policy.mlp_extractor.policy_net), policy.action_net]
        self.layers = [layer.forward for layer in layers]
        self.n_actions = int(policy.action_space.n)
        weight = policy.action_net.weight
        self.device = weight.device
        self.masked_logit = torch.tensor(_MASKED_LOGIT, dtype=weight.dtype, device=self.device)

    def __call__(
        self, observations: np.ndarray, masks: np.ndarray, deterministic: bool
    ) -> np.ndarray:
        policy = self.policy
        if policy.training:
            policy.set_training_mode(False)  # as predict does; a frozen snapshot never is
        with torch.no_grad():
            obs = torch.as_tensor(observations, device=self.device)
            # As get_distribution: the actor's extractor over the preprocessed observation.
            x = self.extractor(
                preprocess_obs(obs, policy.observation_space, policy.normalize_images)
            )
            for forward in self.layers:
                x = forward(x)
            return _choose(x.view(-1, self.n_actions), masks, self.masked_logit, deterministic)


def _choose(
    logits: torch.Tensor, masks: np.ndarray, masked_logit: torch.Tensor, deterministic: bool
) -> np.ndarray:
    """sb3-contrib's masked Categorical, operation for operation: normalized logits,
    masked ones set to -1e8 and normalized again, then the softmax's argmax or one
    ``torch.multinomial`` draw for all rows."""
    logits = logits - logits.logsumexp(dim=-1, keepdim=True)
    allowed = torch.as_tensor(masks, dtype=torch.bool, device=logits.device)
    masked = torch.where(allowed.reshape(logits.shape), logits, masked_logit)
    probs = torch.softmax(masked - masked.logsumexp(dim=-1, keepdim=True), dim=-1)
    actions = probs.argmax(-1) if deterministic else torch.multinomial(probs, 1, True).T
    return actions.cpu().numpy().reshape(-1).astype(np.int64)


def _flatten_rows(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)


def _actor_chain(policy: Any) -> tuple[Any, list[nn.Module], tuple[str, ...]] | None:
    """A policy's actor as (a weightless first step, the layers after it, its shape).

    The first step turns the observations into the extractor's features without
    weights (the lookahead features, or a flatten); the layers are the extractor's
    trunk, the actor's hidden layers and its action layer, ``nn.Flatten`` left out
    (a no-op on rows). The shape names what must agree for networks to be stacked:
    the first step's settings, each layer's kind and sizes. ``None`` for an
    extractor this does not know.
    """
    extractor = policy.pi_features_extractor
    first: Callable[[torch.Tensor], torch.Tensor]
    if isinstance(extractor, _LookaheadFeatures):
        first, trunk = extractor.features, extractor.trunk
        key = f"{type(extractor).__name__}({extractor.plies},{extractor.stones},{extractor.empty_capture})"
    elif isinstance(extractor, SharedTrunk) or type(extractor).__name__ == "FlattenExtractor":
        first, trunk, key = _flatten_rows, getattr(extractor, "net", None), "flatten"
    else:
        return None
    leaves = _leaves(trunk) if trunk is not None else []
    leaves += [*_leaves(policy.mlp_extractor.policy_net), policy.action_net]
    layers = [leaf for leaf in leaves if not isinstance(leaf, nn.Flatten)]
    shape = [
        f"Linear({m.in_features},{m.out_features})"
        if isinstance(m, nn.Linear)
        else repr(m) + ("+weights" if any(True for _ in m.parameters()) else "")
        for m in layers
    ]
    return first, layers, (key, *shape)


class StackedActors:
    """Policies of one architecture acting as one network: one pass for all their games.

    Why: a snapshot pool holds up to ``pool_size`` frozen copies of the learner,
    and every one of them answered its few games with its own forward pass per
    ply, about 13 passes per step of 64 games with a full pool of 9, each costing
    what small tensor operations cost (dispatch, not arithmetic). Here the
    members' layer weights are stacked once, and each layer is one batched matmul
    (``torch.baddbmm``) over every member's games (padded to the largest group);
    then the masked choice is :func:`_choose`'s, as for one policy. The batched
    matmul may round differently from one policy's in the last bit, and the games
    draw their actions in one ``torch.multinomial`` call, so the pool's games are
    not bit for bit what separate passes would play; each member's action
    probabilities are the same (a test compares them). Only for frozen weights:
    the stack is a copy.
    """

    def __init__(self, policies: Sequence[Any]) -> None:
        chains = [_actor_chain(p) for p in policies]
        shapes = {c[2] if c is not None else ("unknown extractor",) for c in chains}
        if len(shapes) != 1 or None in chains or any("+weights" in s for s in next(iter(shapes))):
            raise ValueError(
                f"expected networks of one architecture to stack, but got {sorted(shapes)}"
            )
        first, layers, _ = chains[0]  # type: ignore[misc]
        self.first = first
        self.k = len(policies)
        self.steps: list[Any] = []
        for i, module in enumerate(layers):
            if isinstance(module, nn.Linear):
                mats: list[nn.Linear] = [c[1][i] for c in chains]  # type: ignore[index, misc]
                weight = torch.stack([m.weight.detach().T for m in mats]).contiguous()
                bias = torch.stack([m.bias.detach() for m in mats])[:, None, :].contiguous()
                self.steps.append((weight, bias))
            else:
                self.steps.append(module.forward)
        self.policy = policies[0]
        self.n_actions = int(self.policy.action_space.n)
        weight = self.policy.action_net.weight
        self.masked_logit = torch.tensor(_MASKED_LOGIT, dtype=weight.dtype, device=weight.device)

    def __call__(
        self, observations: np.ndarray, masks: np.ndarray, member: np.ndarray, deterministic: bool
    ) -> np.ndarray:
        """Actions for rows of ``observations``; row ``i`` is for policy ``member[i]``."""
        device = self.masked_logit.device
        with torch.no_grad():
            obs = torch.as_tensor(observations, device=device)
            policy = self.policy
            x = self.first(preprocess_obs(obs, policy.observation_space, policy.normalize_images))
            present = np.unique(member)
            # Few members with games (a later round of a ply): each on its own rows,
            # rather than a pass over every member's weights.
            if 2 * present.size <= self.k:
                logits = self._each(x, member, present)
            else:
                logits = self._stacked(x, member)
            return _choose(
                logits.reshape(-1, self.n_actions), masks, self.masked_logit, deterministic
            )

    def _stacked(self, x: torch.Tensor, member: np.ndarray) -> torch.Tensor:
        """All members at once: rows padded per member, one batched matmul per layer."""
        counts = np.bincount(member, minlength=self.k)
        order = np.argsort(member, kind="stable")
        slot = np.empty_like(member)
        slot[order] = np.arange(member.size) - np.repeat(np.cumsum(counts) - counts, counts)
        who = torch.as_tensor(member, device=x.device)
        where = torch.as_tensor(slot, device=x.device)
        padded = x.new_zeros((self.k, int(counts.max()), x.shape[1]))
        padded[who, where] = x
        for step in self.steps:
            padded = (
                torch.baddbmm(step[1], padded, step[0]) if isinstance(step, tuple) else step(padded)
            )
        return padded[who, where]

    def _each(self, x: torch.Tensor, member: np.ndarray, present: np.ndarray) -> torch.Tensor:
        """The members in ``present``, each on its rows, with its slice of the stack."""
        logits = x.new_empty((member.size, self.n_actions))
        for k in present:
            rows = torch.as_tensor(np.flatnonzero(member == k), device=x.device)
            y = x[rows]
            for step in self.steps:
                y = (
                    torch.addmm(step[1][k, 0], y, step[0][k])
                    if isinstance(step, tuple)
                    else step(y)
                )
            logits[rows] = y
        return logits
