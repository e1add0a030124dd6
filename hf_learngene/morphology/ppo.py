"""PPO over many bodies and tasks at once, for limb-token policies with masked actions.

Why PPO is written here rather than taken from a kept RL library: stable-baselines3 2.9 takes a
``Dict`` observation through a features extractor, but its Gaussian head spans a fixed action
vector, so the padded (masked) joints of a small body would enter every log-probability and
entropy as noise dimensions; TorchRL 0.14 and skrl 2.1 could carry a mask only through a custom
distribution and their own environment/spec wrappers around gymnasium's dict spaces. A masked
PPO is short, so it is kept explicit here, with the standard choices of the PPO paper and its
common MuJoCo settings (GAE, clipped ratio, value loss, entropy bonus, gradient clipping,
observation and return normalisation, linear learning-rate decay).

What a checkpoint holds makes resuming exact: the model, the optimiser, the normalisers, the
sampling generator, and for every environment the seed of its current episode and the actions
taken since its reset. MuJoCo is deterministic, so replaying those actions after a reset with the
same seed puts each environment back in the very state it was in.

The policy is any module called as ``policy(tokens, mask, body_ids, task_ids, action_mask)``
returning ``action_mean``, ``action_log_std`` (both ``[B, L]``), ``value`` (``[B]``) and
optionally ``sparsity_loss`` (added to the loss): :class:`~hf_learngene.DivMorphForContinuousControl`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from ..saving import write_folder_atomically

logger = logging.getLogger(__name__)

OBSERVATION_KEYS = ("tokens", "mask", "action_mask", "body", "task")
LOG_FILE = "metrics.csv"
LOG_2PI = math.log(2 * math.pi)


@dataclass
class PPOConfig:
    """PPO's settings (defaults: the common MuJoCo ones, with a rollout per environment short
    enough that many bodies fit in one update).

    Args:
        total_steps: environment steps over all environments together.
        rollout_steps: steps per environment between two updates.
        epochs: passes over a rollout per update.
        minibatch_size: transitions per gradient step.
        learning_rate: Adam's learning rate, decayed linearly to 0 when ``anneal_lr``.
        gamma, gae_lambda: discount and GAE's λ.
        clip_range: PPO's ratio clip ε.
        entropy_coef, value_coef: weights of the entropy bonus and of the value loss.
        max_grad_norm: gradient clipping (0 = off).
        target_kl: stop an update's epochs early when the approximate KL passes it (None = never).
        normalize_observations: keep running mean/std of the token features of real limbs.
        normalize_rewards: scale rewards by the running std of the discounted return.
        seed: seeds the episodes' resets and the action sampling.
        checkpoint_every: save a checkpoint every this many updates (0 = only at the end).
    """

    total_steps: int = 1_000_000
    rollout_steps: int = 128
    epochs: int = 4
    minibatch_size: int = 512
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    normalize_observations: bool = True
    normalize_rewards: bool = True
    seed: int = 0
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        positive = {"total_steps": self.total_steps, "rollout_steps": self.rollout_steps, "epochs": self.epochs,
                    "minibatch_size": self.minibatch_size, "learning_rate": self.learning_rate}
        bad = {k: v for k, v in positive.items() if not v > 0}
        unit = {"gamma": self.gamma, "gae_lambda": self.gae_lambda}
        bad.update({k: v for k, v in unit.items() if not 0 <= v <= 1})
        bad.update({k: v for k, v in {"clip_range": self.clip_range}.items() if not 0 < v < 1})
        nonnegative = {"entropy_coef": self.entropy_coef, "value_coef": self.value_coef,
                       "max_grad_norm": self.max_grad_norm, "checkpoint_every": self.checkpoint_every}
        bad.update({k: v for k, v in nonnegative.items() if not v >= 0})
        if self.target_kl is not None and not self.target_kl > 0:
            bad["target_kl"] = self.target_kl
        if bad:
            raise ValueError(
                f"invalid PPO settings {bad}: steps, epochs, minibatch_size and learning_rate must be positive, "
                "gamma and gae_lambda in [0, 1], clip_range in (0, 1), the coefficients, max_grad_norm and "
                "checkpoint_every non-negative, target_kl positive or None"
            )


class RunningMeanStd:
    """Running mean and variance over the last axis's features (Chan et al.'s parallel update)."""

    def __init__(self, features: int = 1):
        self.mean = torch.zeros(features, dtype=torch.float64)
        self.var = torch.ones(features, dtype=torch.float64)
        self.count = torch.tensor(1e-4, dtype=torch.float64)

    def update(self, values: torch.Tensor) -> None:
        values = values.double().reshape(-1, self.mean.numel())
        if len(values) == 0:
            return
        mean, var, count = values.mean(0), values.var(0, unbiased=False), torch.tensor(float(len(values)))
        delta, total = mean - self.mean, self.count + count
        self.mean = self.mean + delta * count / total
        self.var = (self.var * self.count + var * count + delta.square() * self.count * count / total) / total
        self.count = total

    def normalize(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(tokens - mean) / std`` clipped to ±10, zero on padded limbs: what a trained policy's
        inputs are, in training and in deployment alike."""
        mean, std = self.mean.float(), self.var.float().add(1e-8).sqrt()
        return ((tokens - mean) / std).clamp(-10, 10) * mask[..., None].to(tokens.dtype)

    @classmethod
    def from_file(cls, path: str | os.PathLike, prefix: str = "token_stats") -> "RunningMeanStd":
        stats = cls()
        stats.load(load_file(str(path)), prefix)
        return stats

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.mean": self.mean, f"{prefix}.var": self.var, f"{prefix}.count": self.count.reshape(1)}

    def load(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        self.mean, self.var = tensors[f"{prefix}.mean"].double(), tensors[f"{prefix}.var"].double()
        self.count = tensors[f"{prefix}.count"].double().reshape(())


def masked_gaussian(mean: torch.Tensor, log_std: torch.Tensor, action_mask: torch.Tensor, actions: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of ``actions`` and entropy of a diagonal Gaussian over the unmasked entries
    only: a body's padded joints add nothing to either."""
    mask = action_mask.to(mean.dtype)
    log_prob = -0.5 * ((actions - mean) / log_std.exp()).square() - log_std - 0.5 * LOG_2PI
    entropy = 0.5 + 0.5 * LOG_2PI + log_std
    return (log_prob * mask).sum(-1), (entropy * mask).sum(-1)


class EnvPool:
    """Environments stepped one after the other, each reset with a seed derived from
    ``(seed, environment, episode)``, remembering the actions of its current episode so that a
    checkpoint can put it back exactly (see the module docstring)."""

    def __init__(self, env_fns: Sequence[Callable[[], Any]], seed: int = 0):
        if not env_fns:
            raise ValueError("PPO needs at least one environment")
        self.envs = [fn() for fn in env_fns]
        self.seed = seed
        self.episode = [0] * len(self.envs)
        self.actions: list[list[np.ndarray]] = [[] for _ in self.envs]
        self.episode_return = np.zeros(len(self.envs))
        self.episode_length = np.zeros(len(self.envs), dtype=np.int64)
        self.observations = [self._reset(i) for i in range(len(self.envs))]

    def __len__(self) -> int:
        return len(self.envs)

    def _episode_seed(self, index: int) -> int:
        return int(np.random.SeedSequence([self.seed, index, self.episode[index]]).generate_state(1)[0])

    def _reset(self, index: int) -> dict:
        self.actions[index] = []
        self.episode_return[index], self.episode_length[index] = 0.0, 0
        observation, _ = self.envs[index].reset(seed=self._episode_seed(index))
        return observation

    def batch(self, observations: Sequence[dict] | None = None) -> dict[str, np.ndarray]:
        observations = self.observations if observations is None else observations
        return {key: np.stack([np.asarray(o[key]) for o in observations]) for key in OBSERVATION_KEYS}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict], list[dict]]:
        """Step every environment; returns rewards, terminated, truncated, the observations the
        episodes that ended finished on (for bootstrapping a truncation), and those episodes'
        returns and lengths (with their body and task)."""
        rewards = np.zeros(len(self.envs))
        terminated = np.zeros(len(self.envs), dtype=bool)
        truncated = np.zeros(len(self.envs), dtype=bool)
        final_observations: list[dict] = list(self.observations)
        finished = []
        for i, env in enumerate(self.envs):
            observation, reward, term, trunc, _ = env.step(actions[i])
            self.actions[i].append(np.asarray(actions[i], dtype=np.float32).copy())
            rewards[i], terminated[i], truncated[i] = reward, term, trunc
            self.episode_return[i] += reward
            self.episode_length[i] += 1
            final_observations[i] = observation
            if term or trunc:
                finished.append({"body": int(observation["body"]), "task": int(observation["task"]),
                                 "return": float(self.episode_return[i]), "length": int(self.episode_length[i])})
                self.episode[i] += 1
                observation = self._reset(i)
            self.observations[i] = observation
        return rewards, terminated, truncated, final_observations, finished

    def state(self) -> dict[str, torch.Tensor]:
        longest = max((len(a) for a in self.actions), default=0)
        width = int(np.prod(self.envs[0].action_space.shape))
        actions = np.zeros((len(self.envs), longest, width), dtype=np.float32)
        for i, taken in enumerate(self.actions):
            if taken:
                actions[i, : len(taken)] = np.stack(taken).reshape(len(taken), width)
        return {
            "envs.episode": torch.tensor(self.episode, dtype=torch.int64),
            "envs.actions": torch.from_numpy(actions),
            "envs.steps": torch.tensor([len(a) for a in self.actions], dtype=torch.int64),
            "envs.episode_return": torch.from_numpy(self.episode_return.copy()),
        }

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Put every environment back where the checkpoint left it: reset with its episode's seed,
        then replay the episode's actions."""
        if len(tensors["envs.episode"]) != len(self.envs):
            raise ValueError(f"the checkpoint has {len(tensors['envs.episode'])} environments, this run {len(self.envs)}")
        self.episode = [int(e) for e in tensors["envs.episode"]]
        shape = self.envs[0].action_space.shape
        for i in range(len(self.envs)):
            self.observations[i] = self._reset(i)
            for action in tensors["envs.actions"][i, : int(tensors["envs.steps"][i])].numpy():
                action = action.reshape(shape)
                self.observations[i], _, term, trunc, _ = self.envs[i].step(action)
                if term or trunc:
                    raise RuntimeError(f"replaying environment {i} ended its episode early: the simulation is not "
                                       "deterministic here, so this checkpoint cannot be resumed exactly")
                self.actions[i].append(action.astype(np.float32))
            self.episode_length[i] = len(self.actions[i])
        self.episode_return = tensors["envs.episode_return"].double().numpy().copy()

    def close(self) -> None:
        for env in self.envs:
            env.close()


@dataclass
class Rollout:
    tokens: torch.Tensor
    mask: torch.Tensor
    action_mask: torch.Tensor
    body: torch.Tensor
    task: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor = field(default=None)
    returns: torch.Tensor = field(default=None)


class PPOTrainer:
    """Trains ``policy`` with PPO on the environments ``env_fns`` make (one per body × task pair,
    or several), writing checkpoints and a CSV log to ``output_dir``.

    Only the parameters that require a gradient are optimised, so a transfer run freezes what it
    keeps (e.g. :meth:`DivMorphForContinuousControl.freeze_for_task_transfer`) before calling.
    """

    def __init__(self, policy: nn.Module, env_fns: Sequence[Callable[[], Any]], config: PPOConfig,
                 output_dir: str | os.PathLike, device: str | torch.device = "cpu", show_progress: bool = True,
                 tensorboard: bool = False, observation_stats: str | os.PathLike | None = None):
        if getattr(getattr(policy, "config", None), "dropout", 0) or any(
                isinstance(m, nn.Dropout) and m.p > 0 for m in policy.modules()):
            raise ValueError("PPO here needs a policy without dropout: actions are collected in eval mode and the "
                             "ratio is taken in train mode, so dropout would bias every ratio (set dropout=0)")
        self.policy, self.config, self.device = policy.to(device), config, torch.device(device)
        self.output_dir = Path(output_dir)
        self.parameters = [p for p in policy.parameters() if p.requires_grad]
        if not self.parameters:
            raise ValueError("the policy has no trainable parameters (everything is frozen)")
        self.optimizer = torch.optim.Adam(self.parameters, lr=config.learning_rate, eps=1e-5)
        self.envs = EnvPool(env_fns, config.seed)
        token_dim = self.envs.observations[0]["tokens"].shape[-1]
        self.token_stats = RunningMeanStd(token_dim)
        # a policy trained before (a transfer) keeps the statistics its inputs were normalised with, frozen
        self.frozen_stats = observation_stats is not None
        if self.frozen_stats:
            self.token_stats = RunningMeanStd.from_file(observation_stats)
            if self.token_stats.mean.numel() != token_dim:
                raise ValueError(f"{observation_stats} holds statistics of {self.token_stats.mean.numel()} token "
                                 f"features, these environments give {token_dim}")
        self.return_stats = RunningMeanStd(1)
        self.discounted = np.zeros(len(self.envs))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps, self.updates = 0, 0
        self.show_progress, self.tensorboard = show_progress, tensorboard
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ acting

    def _tensors(self, batch: dict[str, np.ndarray], update_stats: bool = False) -> dict[str, torch.Tensor]:
        tokens = torch.as_tensor(batch["tokens"], dtype=torch.float32)
        mask = torch.as_tensor(batch["mask"]).bool()
        if self.config.normalize_observations:
            if update_stats and not self.frozen_stats:
                self.token_stats.update(tokens[mask])
            tokens = self.token_stats.normalize(tokens, mask)
        return {"tokens": tokens.to(self.device), "mask": mask.to(self.device),
                "action_mask": torch.as_tensor(batch["action_mask"]).bool().to(self.device),
                "body": torch.as_tensor(batch["body"], dtype=torch.long).to(self.device),
                "task": torch.as_tensor(batch["task"], dtype=torch.long).to(self.device)}

    def _forward(self, obs: dict[str, torch.Tensor]):
        return self.policy(obs["tokens"], obs["mask"], obs["body"], obs["task"], action_mask=obs["action_mask"])

    @torch.no_grad()
    def collect(self) -> tuple[Rollout, list[dict]]:
        """One rollout of ``rollout_steps`` per environment, with GAE advantages."""
        self.policy.eval()
        steps, n = self.config.rollout_steps, len(self.envs)
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("tokens", "mask", "action_mask", "body", "task",
                                                                "actions", "log_probs", "values")}
        rewards = torch.zeros(steps, n)
        ends = torch.zeros(steps, n)  # 1 where the episode stopped (terminated or truncated)
        bootstrap = torch.zeros(steps, n)  # the value of the final observation of a truncated episode
        finished: list[dict] = []
        for t in range(steps):
            obs = self._tensors(self.envs.batch(), update_stats=True)
            out = self._forward(obs)
            noise = torch.randn(out.action_mean.shape, generator=self.generator).to(self.device)
            actions = (out.action_mean + out.action_log_std.exp() * noise) * obs["action_mask"]
            log_probs, _ = masked_gaussian(out.action_mean, out.action_log_std, obs["action_mask"], actions)
            for key in ("tokens", "mask", "action_mask", "body", "task"):
                parts[key].append(obs[key].cpu())
            parts["actions"].append(actions.cpu())
            parts["log_probs"].append(log_probs.cpu())
            parts["values"].append(out.value.float().cpu())
            reward, terminated, truncated, final, done = self.envs.step(actions.clamp(-1, 1).cpu().numpy())
            finished += done
            self.steps += n
            self.discounted = self.discounted * self.config.gamma + reward
            self.return_stats.update(torch.as_tensor(self.discounted))
            self.discounted[terminated | truncated] = 0.0
            scale = math.sqrt(self.return_stats.var.item() + 1e-8) if self.config.normalize_rewards else 1.0
            rewards[t] = torch.as_tensor(np.clip(reward / scale, -10, 10) if self.config.normalize_rewards else reward,
                                         dtype=torch.float32)
            ends[t] = torch.as_tensor(terminated | truncated, dtype=torch.float32)
            if truncated.any():
                cut = [i for i in np.flatnonzero(truncated & ~terminated)]
                if cut:
                    final_obs = self._tensors(self.envs.batch([final[i] for i in cut]))
                    bootstrap[t, cut] = self._forward(final_obs).value.float().cpu()
        last_value = self._forward(self._tensors(self.envs.batch())).value.float().cpu()
        rollout = Rollout(**{k: torch.stack(v) for k, v in parts.items()})
        advantages = torch.zeros(steps, n)
        running = torch.zeros(n)
        for t in reversed(range(steps)):
            following = last_value if t == steps - 1 else rollout.values[t + 1]
            # after an end the next value belongs to a new episode: use the bootstrap (0 when terminated)
            next_value = following * (1 - ends[t]) + bootstrap[t]
            delta = rewards[t] + self.config.gamma * next_value - rollout.values[t]
            running = delta + self.config.gamma * self.config.gae_lambda * (1 - ends[t]) * running
            advantages[t] = running
        rollout.advantages, rollout.returns = advantages, advantages + rollout.values
        return rollout, finished

    # ------------------------------------------------------------------ learning

    def update(self, rollout: Rollout) -> dict[str, float]:
        self.policy.train()
        flat = {k: getattr(rollout, k).flatten(0, 1) for k in
                ("tokens", "mask", "action_mask", "body", "task", "actions", "log_probs", "values", "advantages", "returns")}
        total = len(flat["actions"])
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": [], "approx_kl": [],
                                         "clip_fraction": [], "mean_gate": []}
        for _ in range(self.config.epochs):
            order = torch.randperm(total, generator=self.generator)
            kls = []
            for start in range(0, total, self.config.minibatch_size):
                index = order[start : start + self.config.minibatch_size]
                batch = {k: v[index].to(self.device) for k, v in flat.items()}
                out = self.policy(batch["tokens"], batch["mask"], batch["body"], batch["task"],
                                  action_mask=batch["action_mask"])
                log_probs, entropy = masked_gaussian(out.action_mean, out.action_log_std, batch["action_mask"],
                                                     batch["actions"])
                advantages = batch["advantages"]
                if len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                log_ratio = log_probs - batch["log_probs"]
                ratio = log_ratio.exp()
                clip = self.config.clip_range
                policy_loss = -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages).mean()
                value_loss = 0.5 * (out.value.float() - batch["returns"]).square().mean()
                loss = policy_loss + self.config.value_coef * value_loss - self.config.entropy_coef * entropy.mean()
                sparsity = getattr(out, "sparsity_loss", None)
                if sparsity is not None:
                    loss = loss + sparsity
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.config.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    kl = ((ratio - 1) - log_ratio).mean().item()
                kls.append(kl)
                stats["policy_loss"].append(policy_loss.item())
                stats["value_loss"].append(value_loss.item())
                stats["entropy"].append(entropy.mean().item())
                stats["approx_kl"].append(kl)
                stats["clip_fraction"].append(((ratio - 1).abs() > clip).float().mean().item())
                gates = getattr(out, "gates", None)
                stats["mean_gate"].append(gates.float().mean().item() if gates is not None and gates.numel()
                                          else float("nan"))
            if self.config.target_kl is not None and np.mean(kls) > self.config.target_kl:
                break
        self.updates += 1
        return {k: float(np.mean(v)) for k, v in stats.items()}

    def train(self, until_step: int | None = None) -> list[dict[str, Any]]:
        """Collect and update until ``total_steps`` (or ``until_step``, to stop early and resume later);
        returns the log rows (also written to ``output_dir/metrics.csv``)."""
        stop = min(self.config.total_steps, until_step or self.config.total_steps)
        per_update = self.config.rollout_steps * len(self.envs)
        total_updates = math.ceil(self.config.total_steps / per_update)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        writer = self._tensorboard_writer()
        bar = tqdm(total=stop, initial=self.steps, desc="PPO", unit="step", disable=not self.show_progress)
        try:
            while self.steps < stop:
                if self.config.anneal_lr:
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.config.learning_rate * (1 - self.updates / total_updates)
                started = time.perf_counter()
                rollout, finished = self.collect()
                row = {"step": self.steps, "update": self.updates + 1, **self.update(rollout)}
                row["episodes"] = len(finished)
                by_pair = _mean_by_pair(finished)
                # every (body, task) pair counts once: a pooled mean would weigh the pairs whose episodes end early
                row["mean_return"] = float(np.mean(list(by_pair.values()))) if by_pair else float("nan")
                row["steps_per_second"] = per_update / (time.perf_counter() - started)
                row["returns_by_body_task"] = json.dumps(by_pair)
                self.history.append(row)
                self._log(row, writer)
                bar.update(per_update)
                bar.set_postfix(ret=f"{row['mean_return']:.1f}")
                if self.config.checkpoint_every and self.updates % self.config.checkpoint_every == 0:
                    self.save_checkpoint()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return self.history

    # ------------------------------------------------------------------ saving

    def _log(self, row: dict[str, Any], writer) -> None:
        path = self.output_dir / LOG_FILE
        fields = list(row)
        if path.exists():
            with open(path, newline="") as handle:
                header = next(csv.reader(handle), [])
            if header and header != fields:
                with open(path, newline="") as handle:
                    rows = list(csv.DictReader(handle))
                # a run resumed from an older version logs other columns: rewrite under both headers
                # rather than append rows whose values would sit under the wrong names
                fields = header + [name for name in fields if name not in header]
                with open(path, "w", newline="") as handle:
                    out = csv.DictWriter(handle, fieldnames=fields)
                    out.writeheader()
                    out.writerows(rows)
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", newline="") as handle:
            out = csv.DictWriter(handle, fieldnames=fields)
            if new:
                out.writeheader()
            out.writerow(row)
        if writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step":
                    writer.add_scalar(f"ppo/{key}", value, row["step"])

    def _tensorboard_writer(self):
        if not self.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.output_dir / "tensorboard"))

    def save_observation_stats(self, path: str | os.PathLike) -> None:
        """The token statistics the policy's inputs are normalised with (what a deployment or a transfer
        must apply: ``(tokens - mean) / sqrt(var + 1e-8)``, clipped to ±10, zero on padded limbs)."""
        save_file({k: v.contiguous() for k, v in self.token_stats.state("token_stats").items()}, str(path))

    def _environment_names(self) -> list[str]:
        return [f"{env.spec.id}:{env.spec.max_episode_steps}" if getattr(env, "spec", None) else type(env).__name__
                for env in self.envs.envs]

    def save_checkpoint(self, folder: str | os.PathLike | None = None) -> Path:
        """Everything a resume needs, written to a staging folder and renamed into place (by default
        ``output_dir/checkpoints/step-N``)."""
        folder = Path(folder) if folder is not None else self.output_dir / "checkpoints" / f"step-{self.steps}"
        save_pretrained = getattr(self.policy, "save_pretrained", None)
        if save_pretrained is None:
            raise TypeError("the policy must be a PreTrainedModel (save_pretrained) to be checkpointed")

        def write(staging: Path) -> None:
            save_pretrained(staging / "model")
            torch.save(self.optimizer.state_dict(), staging / "optimizer.pt")
            tensors = {**self.token_stats.state("token_stats"), **self.return_stats.state("return_stats"),
                       **self.envs.state(), "generator": self.generator.get_state(),
                       "discounted": torch.from_numpy(self.discounted.copy())}
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(staging / "trainer_state.safetensors"))
            meta = {"steps": self.steps, "updates": self.updates, "config": asdict(self.config),
                    "environments": self._environment_names()}
            (staging / "trainer_state.json").write_text(json.dumps(meta, indent=2))

        return write_folder_atomically(folder, write)

    def load_checkpoint(self, folder: str | os.PathLike) -> None:
        """Resume from :meth:`save_checkpoint`'s folder: the next update is the one the saved run made next."""
        folder = Path(folder)
        missing = [n for n in ("model", "optimizer.pt", "trainer_state.safetensors", "trainer_state.json")
                   if not (folder / n).exists()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a PPO checkpoint: it lacks {', '.join(missing)}")
        meta = json.loads((folder / "trainer_state.json").read_text())
        saved = {k: v for k, v in meta["config"].items() if k not in ("total_steps", "checkpoint_every")}
        ours = {k: v for k, v in asdict(self.config).items() if k in saved}
        if saved != ours:
            changed = {k: (saved[k], ours[k]) for k in saved if saved[k] != ours[k]}
            raise ValueError(f"the checkpoint was made with other PPO settings (saved, now): {changed}")
        weight_files = sorted((folder / "model").glob("*.safetensors"))
        if not weight_files:
            raise FileNotFoundError(f"{folder / 'model'} holds no safetensors weights")
        state = {}
        for path in weight_files:
            state.update(load_file(str(path)))
        missing_keys, unexpected = self.policy.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing_keys if k not in _tied_keys(self.policy)]:
            raise ValueError(f"the checkpoint's model does not match the policy (missing {missing_keys}, "
                             f"unexpected {unexpected})")
        saved_envs, envs = meta.get("environments"), self._environment_names()
        if saved_envs != envs:
            raise ValueError(f"the checkpoint was made with other environments: {saved_envs} (saved) vs {envs} (now)")
        if meta["config"]["total_steps"] != self.config.total_steps:
            logger.warning("total_steps changed from %s to %s: the learning-rate decay follows the new total",
                           meta["config"]["total_steps"], self.config.total_steps)
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu"))
        tensors = load_file(str(folder / "trainer_state.safetensors"))
        self.token_stats.load(tensors, "token_stats")
        self.return_stats.load(tensors, "return_stats")
        self.generator.set_state(tensors["generator"])
        self.discounted = tensors["discounted"].double().numpy().copy()
        self.envs.load(tensors)
        self.steps, self.updates = int(meta["steps"]), int(meta["updates"])
        log = self.output_dir / LOG_FILE
        if log.exists():  # rows an interrupted run logged after this checkpoint are logged again
            with open(log, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= self.steps]
            self.history = [{k: _number(v) for k, v in row.items()} for row in rows]
            if rows:
                with open(log, "w", newline="") as handle:
                    out = csv.DictWriter(handle, fieldnames=list(rows[0]))
                    out.writeheader()
                    out.writerows(rows)
            else:
                log.unlink()


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _tied_keys(model: nn.Module) -> set[str]:
    return set(getattr(model, "all_tied_weights_keys", None) or {})


def _mean_by_pair(finished: list[dict]) -> dict[str, float]:
    by_pair: dict[str, list[float]] = {}
    for episode in finished:
        by_pair.setdefault(f"{episode['body']}/{episode['task']}", []).append(episode["return"])
    return {pair: float(np.mean(values)) for pair, values in sorted(by_pair.items())}
