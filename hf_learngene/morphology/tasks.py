"""Tasks: reward variants over the same bodies.

Every task's reward is ``task term + healthy bonus - control cost``, where the healthy bonus and the control cost
weight are those of the body's stock gymnasium env (half_cheetah has no healthy bonus; the ant's contact cost is
left out so that all families share one reward form). Only the task term changes between tasks:

=============  ======================================================================  ==============
task           task term                                                               split
=============  ======================================================================  ==============
run_forward    ``weight * vx`` (vx: forward velocity of the torso, m/s)               train
run_backward   ``-weight * vx``                                                        train
target_speed   ``-weight * |vx - target_speed|`` (0 at exactly 1 m/s forward)         train
stand_tall     ``weight * z / z0`` (torso height over its initial height: 1 standing)  held out
=============  ======================================================================  ==============
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownTaskError
from .splits import SuiteSplit


@dataclass(frozen=True)
class TaskSpec:
    """One row of the task table. ``kind`` picks the term: "velocity" (``direction * vx``), "target_speed"
    (``-|vx - target_speed|``) or "height" (``z / z0``); ``weight`` scales it."""

    name: str
    kind: str
    direction: float = 1.0
    target_speed: float = 1.0
    weight: float = 1.0
    description: str = ""

    def __post_init__(self):
        if self.kind not in ("velocity", "target_speed", "height"):
            raise ValueError(f"TaskSpec {self.name!r}: kind must be velocity, target_speed or height, "
                             f"got {self.kind!r}.")

    def term(self, x_velocity: float, torso_height: float, initial_torso_height: float) -> float:
        """The task term of one transition (the rest of the reward does not depend on the task)."""
        if self.kind == "velocity":
            return self.weight * self.direction * x_velocity
        if self.kind == "target_speed":
            return -self.weight * abs(x_velocity - self.target_speed)
        return self.weight * torso_height / initial_torso_height


# The suite's tasks. Their order is their index in observations ("task"). Changing a row means a new SUITE_VERSION.
TRAIN_TASK_SPECS: tuple[TaskSpec, ...] = (
    TaskSpec("run_forward", "velocity", direction=1.0, description="run forward (+x) as fast as possible"),
    TaskSpec("run_backward", "velocity", direction=-1.0, description="run backward (-x) as fast as possible"),
    TaskSpec("target_speed", "target_speed", target_speed=1.0, description="hold 1.0 m/s forward"),
)
HELD_OUT_TASK_SPECS: tuple[TaskSpec, ...] = (
    TaskSpec("stand_tall", "height", description="keep the torso as high as possible (stand tall, jump)"),
)
TASK_SPECS: tuple[TaskSpec, ...] = TRAIN_TASK_SPECS + HELD_OUT_TASK_SPECS
TRAIN_TASKS: tuple[str, ...] = tuple(task.name for task in TRAIN_TASK_SPECS)
HELD_OUT_TASKS: tuple[str, ...] = tuple(task.name for task in HELD_OUT_TASK_SPECS)
TASKS: tuple[str, ...] = TRAIN_TASKS + HELD_OUT_TASKS
NUM_TASKS = len(TASKS)


TASK_SPLIT = SuiteSplit("task", "tasks", TRAIN_TASKS, HELD_OUT_TASKS, UnknownTaskError)


def task_index(name: str) -> int:
    """Index of a task in ``TASKS`` (the ``"task"`` entry of observations)."""
    return TASK_SPLIT.index(name)


def get_task(name: str) -> TaskSpec:
    return TASK_SPECS[task_index(name)]
