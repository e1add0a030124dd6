"""The gymnasium environment of one (body, task) pair, the registered ids and vector-env helpers."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from .bodies import BODIES, NUM_BODIES, TRAIN_BODIES, Body, body_index, get_body
from .errors import InvalidActionError, MorphologyError
from .tasks import NUM_TASKS, TASKS, TRAIN_TASKS, get_task, task_index
from .tokens import MAX_LIMBS, SUITE_VERSION, TOKEN_DIM, LimbLayout

DEFAULT_MAX_EPISODE_STEPS = 1000
"""Episode length of every registered id, as the stock MuJoCo envs (pass ``max_episode_steps`` to change it)."""

TRAIN_PAIRS: tuple[tuple[str, str], ...] = tuple(itertools.product(TRAIN_BODIES, TRAIN_TASKS))
"""Every (train body, train task) pair: the multi-agent training set."""

DEFAULT_CAMERA_CONFIG = {"trackbodyid": 1, "distance": 4.0, "elevation": -20.0}


class MorphologyEnv(MujocoEnv, utils.EzPickle):
    """One body of the morphology suite doing one task, with limb-token observations.

    Observations are a dict: ``tokens`` float32 ``[MAX_LIMBS, TOKEN_DIM]`` (see ``TOKEN_FIELDS``), ``mask`` and
    ``action_mask`` float32 ``[MAX_LIMBS]`` (1 = a real limb / a limb with an actuated joint), ``body`` and
    ``task`` (indices in ``BODIES`` and ``TASKS``). Actions are ``Box(-1, 1, (MAX_LIMBS,))``, one per limb slot:
    the entry of an actuated limb is clipped to [-1, 1] and mapped linearly onto its actuator's ctrlrange, every
    other entry (the torso, padding) is ignored. The reward is ``task term + healthy bonus - control cost`` (see
    ``hf_learngene.morphology.tasks``); hopper, walker2d and ant terminate when unhealthy like their stock v5 envs,
    with the z range scaled by the body's standing height; half_cheetah terminates only on a non-finite state.
    Like the stock classes this one has no time limit: ``make_env`` and ``gymnasium.make`` add it.

    Args:
        body: a body name of the suite (``BODIES``) or a ``Body`` (``Body.from_xml`` wraps any XML of a family).
        task: a task name (``TASKS``).
        frame_skip, ctrl_cost_weight, healthy_reward, reset_noise_scale: override the stock env's value for
            the body's family.
        terminate_when_unhealthy: end the episode when the health check fails (default True).
        **kwargs: passed to ``MujocoEnv`` (``render_mode``, ``width``, ``height``, camera options).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"]}

    def __init__(
        self,
        body: str | Body = "hopper",
        task: str = "run_forward",
        *,
        frame_skip: int | None = None,
        ctrl_cost_weight: float | None = None,
        healthy_reward: float | None = None,
        terminate_when_unhealthy: bool = True,
        reset_noise_scale: float | None = None,
        default_camera_config: dict[str, Any] | None = None,
        **kwargs,
    ):
        utils.EzPickle.__init__(
            self, body, task, frame_skip=frame_skip, ctrl_cost_weight=ctrl_cost_weight,
            healthy_reward=healthy_reward, terminate_when_unhealthy=terminate_when_unhealthy,
            reset_noise_scale=reset_noise_scale, default_camera_config=default_camera_config, **kwargs,
        )
        if isinstance(body, str):
            body = get_body(body)
        elif not isinstance(body, Body):
            raise TypeError(f"body must be a body name ({', '.join(BODIES)}) or a Body, got {type(body).__name__}.")
        if not isinstance(task, str):
            raise TypeError(f"task must be a task name ({', '.join(TASKS)}), got {type(task).__name__}.")
        self.body = body
        self.task = get_task(task)
        self.task_index = task_index(task)
        family = body.family_spec
        frame_skip = family.frame_skip if frame_skip is None else frame_skip
        if not isinstance(frame_skip, int) or frame_skip < 1:
            raise MorphologyError(f"frame_skip must be a positive int, got {frame_skip!r}.")
        self._ctrl_cost_weight = family.ctrl_cost_weight if ctrl_cost_weight is None else float(ctrl_cost_weight)
        self._healthy_reward = family.healthy_reward if healthy_reward is None else float(healthy_reward)
        self._terminate_when_unhealthy = terminate_when_unhealthy
        self._reset_noise_scale = family.reset_noise_scale if reset_noise_scale is None else float(reset_noise_scale)

        MujocoEnv.__init__(
            self, body.xml_path, frame_skip, observation_space=None,
            default_camera_config=DEFAULT_CAMERA_CONFIG if default_camera_config is None else default_camera_config,
            **kwargs,
        )
        self.metadata = {**type(self).metadata, "render_fps": int(np.round(1.0 / self.dt))}
        self.layout = LimbLayout.from_model(self.model, body.family)
        self._root = self.layout.root_body_id
        self.observation_space = spaces.Dict({
            "tokens": spaces.Box(-np.inf, np.inf, (MAX_LIMBS, TOKEN_DIM), np.float32),
            "mask": spaces.Box(0.0, 1.0, (MAX_LIMBS,), np.float32),
            "action_mask": spaces.Box(0.0, 1.0, (MAX_LIMBS,), np.float32),
            "body": spaces.Discrete(max(NUM_BODIES, body.index + 1)),
            "task": spaces.Discrete(NUM_TASKS),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (MAX_LIMBS,), np.float32)

    # --- health, as the stock env of the family ------------------------------------------------------------------

    @property
    def torso_height(self) -> float:
        return float(self.data.xpos[self._root, 2])

    @property
    def is_healthy(self) -> bool:
        state = self.state_vector()
        if not np.isfinite(state).all():
            return False
        family = self.body.family_spec
        if family.healthy_z_range is not None:
            low, high = (bound * self.body.height_ratio for bound in family.healthy_z_range)
            if not low < self.torso_height < high:
                return False
        if family.healthy_angle_range is not None and self.layout.root_hinge_qpos_adr >= 0:
            low, high = family.healthy_angle_range
            if not low < self.data.qpos[self.layout.root_hinge_qpos_adr] < high:
                return False
        if family.healthy_state_range is not None:
            low, high = family.healthy_state_range
            # As the stock hopper: every coordinate but the root's x and z position.
            if not np.all((low < state[2:]) & (state[2:] < high)):
                return False
        return True

    # --- actions, observations, steps ----------------------------------------------------------------------------

    def action_to_ctrl(self, action) -> tuple[np.ndarray, np.ndarray]:
        """(MuJoCo ctrl, the clipped per-actuator actions in [-1, 1]) for a ``(MAX_LIMBS,)`` action."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (MAX_LIMBS,):
            raise InvalidActionError(
                f"The action has shape {action.shape}; expected ({MAX_LIMBS},), one entry per limb slot (entries of "
                f"the torso and padded slots are ignored; this body acts on slots "
                f"{np.flatnonzero(self.layout.action_mask).tolist()})."
            )
        per_actuator = action[self.layout.actuator_limbs]
        if not np.isfinite(per_actuator).all():
            bad = self.layout.actuator_limbs[~np.isfinite(per_actuator)].tolist()
            raise InvalidActionError(f"The action has non-finite values at actuated limb slots {bad}.")
        per_actuator = np.clip(per_actuator, -1.0, 1.0)
        low, high = self.layout.ctrl_low, self.layout.ctrl_high
        return low + (per_actuator + 1.0) * 0.5 * (high - low), per_actuator

    def _get_obs(self) -> dict[str, Any]:
        return {
            "tokens": self.layout.tokens(self.model, self.data),
            "mask": self.layout.mask.copy(),
            "action_mask": self.layout.action_mask.copy(),
            "body": np.int64(self.body.index),
            "task": np.int64(self.task_index),
        }

    def step(self, action):
        ctrl, per_actuator = self.action_to_ctrl(action)
        x_before = float(self.data.xpos[self._root, 0])
        self.do_simulation(ctrl, self.frame_skip)
        # mj_step leaves positions of the substep before the last one: recompute them for the new state.
        mujoco.mj_forward(self.model, self.data)
        x_after = float(self.data.xpos[self._root, 0])
        x_velocity = (x_after - x_before) / self.dt
        height = self.torso_height
        healthy = self.is_healthy
        task_reward = self.task.term(x_velocity, height, self.body.torso_height)
        survive_reward = self._healthy_reward if healthy else 0.0
        ctrl_cost = self._ctrl_cost_weight * float(np.sum(np.square(per_actuator)))
        reward = task_reward + survive_reward - ctrl_cost
        if self.body.family_spec.healthy_reward > 0:  # hopper, walker2d, ant
            terminated = self._terminate_when_unhealthy and not healthy
        else:  # half_cheetah: no health check, only a broken simulation ends the episode
            terminated = not np.isfinite(self.state_vector()).all()
        info = {
            "x_position": x_after,
            "x_velocity": x_velocity,
            "torso_height": height,
            "is_healthy": healthy,
            "reward_task": task_reward,
            "reward_survive": survive_reward,
            "reward_ctrl": -ctrl_cost,
        }
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(reward), bool(terminated), False, info

    def reset_model(self) -> dict[str, Any]:
        scale = self._reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(-scale, scale, size=self.model.nq)
        if self.body.family_spec.normal_velocity_noise:
            qvel = self.init_qvel + scale * self.np_random.standard_normal(self.model.nv)
        else:
            qvel = self.init_qvel + self.np_random.uniform(-scale, scale, size=self.model.nv)
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_reset_info(self) -> dict[str, float]:
        return {"x_position": float(self.data.xpos[self._root, 0]), "torso_height": self.torso_height}


# --- registration and makers ---------------------------------------------------------------------------------------


def env_id(body: str, task: str) -> str:
    """The gymnasium id of a (body, task) pair: ``hf_learngene/Morph-<body>-<task>-v<SUITE_VERSION>``."""
    body_index(body)
    task_index(task)
    return f"hf_learngene/Morph-{body}-{task}-v{SUITE_VERSION}"


def register_envs() -> list[str]:
    """Register every (body, task) pair with gymnasium (idempotent); returns the ids."""
    ids = []
    for body, task in itertools.product(BODIES, TASKS):
        name = env_id(body, task)
        if name not in gymnasium.registry:
            gymnasium.register(
                name, entry_point="hf_learngene.morphology.suite:MorphologyEnv", kwargs={"body": body, "task": task},
                max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
            )
        ids.append(name)
    return ids


def make_env(body: str, task: str, *, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, **kwargs) -> gymnasium.Env:
    """``gymnasium.make`` of the pair's registered id, with a ``max_episode_steps`` time limit; ``kwargs`` go to
    ``gymnasium.make`` and ``MorphologyEnv`` (``render_mode``, ``ctrl_cost_weight``, ...)."""
    if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
        raise MorphologyError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}.")
    name = env_id(body, task)
    register_envs()
    return gymnasium.make(name, max_episode_steps=max_episode_steps, **kwargs)


def make_vector_env(
    pairs: Iterable[tuple[str, str]],
    num_envs_per_pair: int = 1,
    *,
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    env_kwargs: dict[str, Any] | None = None,
    **vector_kwargs,
) -> gymnasium.vector.SyncVectorEnv:
    """A ``SyncVectorEnv`` with ``num_envs_per_pair`` copies of each (body, task) pair, in the given order (pair
    by pair); dict observations come back stacked (``tokens`` ``[N, MAX_LIMBS, TOKEN_DIM]``, ``body`` ``[N]``, ...).
    ``vector_kwargs`` go to ``SyncVectorEnv`` (``autoreset_mode``, ``copy``)."""
    pairs = list(pairs)
    if not pairs:
        raise MorphologyError(f"make_vector_env needs at least one (body, task) pair, e.g. {TRAIN_PAIRS[0]}.")
    for pair in pairs:
        if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
            raise MorphologyError(f"Each pair must be a (body, task) tuple, got {pair!r}.")
        env_id(*pair)
    if not isinstance(num_envs_per_pair, int) or num_envs_per_pair < 1:
        raise MorphologyError(f"num_envs_per_pair must be a positive int, got {num_envs_per_pair!r}.")
    env_kwargs = dict(env_kwargs or {})
    makers = [
        functools.partial(make_env, body, task, max_episode_steps=max_episode_steps, **env_kwargs)
        for body, task in pairs
        for _ in range(num_envs_per_pair)
    ]
    return gymnasium.vector.SyncVectorEnv(makers, **vector_kwargs)
