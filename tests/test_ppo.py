"""The masked PPO of the morphology recipes, on a small environment whose optimum is known.

The environment follows the suite's observation contract (limb tokens, masks, body and task
indices): each limb's best action is written in its token, bodies have different limb counts,
and the task flips the sign. A policy that reads the token learns it within a few updates.
"""

import csv
import json
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from hf_learngene.morphology.ppo import EnvPool, PPOConfig, PPOTrainer, _mean_by_pair, masked_gaussian

LIMBS, FEATURES = 4, 3


class ReachEnv(gym.Env):
    """Reward ``-Σ (a_l - sign · target_l)²`` over the body's real limbs; 8 steps an episode."""

    def __init__(self, body: int, task: int):
        self.body, self.task, self.limbs = body, task, 2 + body
        self.observation_space = gym.spaces.Dict({
            "tokens": gym.spaces.Box(-np.inf, np.inf, (LIMBS, FEATURES), np.float32),
            "mask": gym.spaces.MultiBinary(LIMBS), "action_mask": gym.spaces.MultiBinary(LIMBS),
            "body": gym.spaces.Discrete(2), "task": gym.spaces.Discrete(2)})
        self.action_space = gym.spaces.Box(-1, 1, (LIMBS,), np.float32)

    def _observation(self):
        tokens = np.zeros((LIMBS, FEATURES), np.float32)
        tokens[: self.limbs, 0] = self.target[: self.limbs]
        tokens[: self.limbs, 1] = 1.0
        mask = (np.arange(LIMBS) < self.limbs).astype(np.int8)
        return {"tokens": tokens, "mask": mask, "action_mask": mask, "body": self.body, "task": self.task}

    def _draw(self):
        self.target = self.np_random.uniform(-0.8, 0.8, LIMBS).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self._draw()
        return self._observation(), {}

    def step(self, action):
        sign = 1.0 if self.task == 0 else -1.0
        error = (np.asarray(action)[: self.limbs] - sign * self.target[: self.limbs]) ** 2
        self.t += 1
        self._draw()
        return self._observation(), -float(error.sum()), False, self.t >= 8, {}


class TinyPolicyConfig(PretrainedConfig):
    model_type = "tiny_reach_policy"


@dataclass
class PolicyOutput(ModelOutput):
    action_mean: torch.Tensor = None
    action_log_std: torch.Tensor = None
    value: torch.Tensor = None


class TinyPolicy(PreTrainedModel):
    config_class = TinyPolicyConfig

    def __init__(self, config):
        super().__init__(config)
        self.task_gain = nn.Embedding(2, 1)  # the task flips the best action: a gain per task can learn it
        self.actor = nn.Linear(FEATURES, 1)
        self.critic = nn.Linear(FEATURES, 1)
        self.log_std = nn.Parameter(torch.full((LIMBS,), -0.5))
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.1)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.ones_(module.weight)

    def forward(self, tokens, mask, body_ids, task_ids, action_mask=None):
        mask = mask.float()
        mean = self.actor(tokens).squeeze(-1) * self.task_gain(task_ids) * mask
        value = (self.critic(tokens).squeeze(-1) * mask).sum(-1) / mask.sum(-1)
        return PolicyOutput(mean, self.log_std.expand_as(mean), value)


def trainer(tmp_path, **settings):
    torch.manual_seed(0)
    config = PPOConfig(**{"total_steps": 4096, "rollout_steps": 32, "epochs": 4, "minibatch_size": 64,
                          "learning_rate": 1e-2, "seed": 3, **settings})
    fns = [lambda b=b, t=t: ReachEnv(b, t) for b in range(2) for t in range(2)]
    return PPOTrainer(TinyPolicy(TinyPolicyConfig()), fns, config, tmp_path, show_progress=False)


def test_padded_joints_add_nothing_to_log_probability_or_entropy():
    mean, log_std = torch.zeros(2, 4), torch.full((2, 4), -0.3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    actions = torch.randn(2, 4)
    log_prob, entropy = masked_gaussian(mean, log_std, mask, actions)
    other = actions.clone()
    other[0, 2:] = 100.0  # whatever a padded joint holds
    assert torch.equal(masked_gaussian(mean, log_std, mask, other)[0], log_prob)
    expected = torch.distributions.Normal(mean[0, :2], log_std[0, :2].exp()).log_prob(actions[0, :2]).sum()
    torch.testing.assert_close(log_prob[0], expected)
    torch.testing.assert_close(entropy[1], torch.distributions.Normal(mean[1], log_std[1].exp()).entropy().sum())


def mean_action_error(run) -> float:
    """Squared error of the policy's mean action against the best action, per real limb."""
    envs = EnvPool([lambda b=b, t=t: ReachEnv(b, t) for b in range(2) for t in range(2)], seed=99)
    errors = []
    for _ in range(16):
        obs = run._tensors(envs.batch())
        with torch.no_grad():
            mean = run._forward(obs).action_mean
        sign = torch.where(obs["task"] == 0, 1.0, -1.0)[:, None]
        best = torch.as_tensor(envs.batch()["tokens"][..., 0]) * sign
        errors.append(((mean - best).square() * obs["mask"]).sum() / obs["mask"].sum())
        envs.step(mean.numpy())
    return float(torch.stack(errors).mean())


def test_ppo_learns_the_reach_task(tmp_path):
    run = trainer(tmp_path, total_steps=16384)
    before = mean_action_error(run)
    history = run.train()
    after = mean_action_error(run)
    assert after < 0.2 * before, (before, after)
    assert history[-1]["mean_return"] > history[0]["mean_return"]
    assert (tmp_path / "metrics.csv").read_text().count("\n") == len(history) + 1


def test_resuming_a_checkpoint_continues_exactly(tmp_path):
    straight = trainer(tmp_path / "a", total_steps=1024)
    straight.train()
    interrupted = trainer(tmp_path / "b", total_steps=1024)
    interrupted.train(until_step=512)
    checkpoint = interrupted.save_checkpoint(tmp_path / "b" / "checkpoint")
    resumed = trainer(tmp_path / "c", total_steps=1024)
    resumed.load_checkpoint(checkpoint)
    resumed.train()
    assert resumed.steps == straight.steps
    for (name, a), b in zip(straight.policy.state_dict().items(), resumed.policy.state_dict().values()):
        assert torch.equal(a, b), name
    assert [r["mean_return"] for r in resumed.history] == [r["mean_return"] for r in straight.history[-len(resumed.history):]]


def test_a_checkpoint_with_other_settings_or_files_is_refused(tmp_path):
    run = trainer(tmp_path / "a", total_steps=256)
    run.train()
    checkpoint = run.save_checkpoint(tmp_path / "a" / "checkpoint")
    with pytest.raises(ValueError, match="other PPO settings"):
        trainer(tmp_path / "b", total_steps=256, learning_rate=3e-4).load_checkpoint(checkpoint)
    with pytest.raises(FileNotFoundError, match="not a PPO checkpoint"):
        trainer(tmp_path / "c").load_checkpoint(tmp_path)


@pytest.mark.parametrize("setting", [{"total_steps": 0}, {"gamma": 1.5}, {"clip_range": 0.0}, {"target_kl": -1.0},
                                     {"entropy_coef": -0.1}])
def test_bad_settings_are_named(setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        PPOConfig(**setting)


def test_episode_seeds_make_environments_reproducible():
    a = EnvPool([lambda: ReachEnv(0, 0)], seed=5)
    b = EnvPool([lambda: ReachEnv(0, 0)], seed=5)
    np.testing.assert_array_equal(a.batch()["tokens"], b.batch()["tokens"])
    c = EnvPool([lambda: ReachEnv(0, 0)], seed=6)
    assert not np.array_equal(a.batch()["tokens"], c.batch()["tokens"])


class ThreeStepEnv(ReachEnv):
    """Reward 1 at every step; the episode ends after 3 steps, terminated or truncated."""

    def __init__(self, terminate: bool):
        super().__init__(0, 0)
        self.terminate = terminate

    def step(self, action):
        observation, _, _, _, info = super().step(action)
        done = self.t >= 3
        return observation, 1.0, done and self.terminate, done and not self.terminate, info


@pytest.mark.parametrize("terminate", [True, False])
def test_returns_bootstrap_a_truncated_episode_and_not_a_terminated_one(terminate, tmp_path):
    gamma, value = 0.5, 0.4
    config = PPOConfig(total_steps=3, rollout_steps=3, gamma=gamma, gae_lambda=1.0, normalize_rewards=False)
    run = PPOTrainer(TinyPolicy(TinyPolicyConfig()), [lambda: ThreeStepEnv(terminate)], config, tmp_path,
                     show_progress=False)
    with torch.no_grad():
        run.policy.critic.weight.zero_()
        run.policy.critic.bias.fill_(value)
    rollout, finished = run.collect()
    tail = 0.0 if terminate else gamma**3 * value  # the value after the last step, only when cut by the time limit
    expected = torch.tensor([1 + gamma + gamma**2 + tail, 1 + gamma + tail / gamma, 1 + tail / gamma**2])
    torch.testing.assert_close(rollout.returns[:, 0], expected)
    torch.testing.assert_close(rollout.advantages[:, 0], expected - value)
    assert len(finished) == 1 and finished[0]["length"] == 3 and finished[0]["return"] == 3.0


def test_a_log_with_older_columns_is_rewritten_not_misaligned(tmp_path):
    run = trainer(tmp_path / "a", total_steps=512)
    run.output_dir.mkdir(parents=True, exist_ok=True)
    # a metrics.csv from a version without some columns (as a resumed older run would leave)
    (run.output_dir / "metrics.csv").write_text("step,update,mean_return\n256,1,1.5\n")
    run.train()
    with open(run.output_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["step"] == "256" and rows[0]["mean_return"] == "1.5" and rows[0]["mean_gate"] == ""
    assert [int(r["step"]) for r in rows[1:]] == [h["step"] for h in run.history]
    assert [int(r["episodes"]) for r in rows[1:]] == [h["episodes"] for h in run.history]
    np.testing.assert_allclose([float(r["mean_return"]) for r in rows[1:]], [h["mean_return"] for h in run.history])


def test_the_logged_mean_return_weighs_every_body_task_pair_the_same(tmp_path):
    # pairs whose episodes end early finish more episodes per update: a pooled mean would be theirs
    finished = [{"body": 0, "task": 0, "return": 1.0}] * 9 + [{"body": 1, "task": 0, "return": 100.0}]
    by_pair = _mean_by_pair(finished)
    assert by_pair == {"0/0": 1.0, "1/0": 100.0}
    run = trainer(tmp_path, total_steps=512)
    for row in run.train():
        pairs = json.loads(row["returns_by_body_task"])
        if pairs:
            assert row["mean_return"] == pytest.approx(np.mean(list(pairs.values())))
