"""The morphology suite: many robot bodies and tasks behind one limb-token interface, for DivMorph.

What it is. Sixteen procedural bodies made from gymnasium's MuJoCo v5 hopper, walker2d, half_cheetah and ant
(segments added or removed, lengths and masses scaled, joint ranges narrowed or widened; see ``bodies``) times
four tasks (``run_forward``, ``run_backward``, ``target_speed``, ``stand_tall``; see ``tasks``). Every (body, task)
pair is a gymnasium id, ``hf_learngene/Morph-<body>-<task>-v2``, registered when this package is imported; its
observations are one token per limb, so one Transformer controller can drive every body.

Why. DivMorph and its peers (MetaMorph, ModuMorph, HyperDistill) report on UNIMAL, which needs gym 0.17,
mujoco-py and a drive download: nothing of it installs today. This suite keeps their interface (limb tokens,
masks, one action per limb; train and held-out bodies) on ``pip install gymnasium mujoco``.

Observations (a dict; ``make_vector_env`` stacks them along a leading env axis):

* ``tokens``: float32 ``[MAX_LIMBS, TOKEN_DIM]`` = ``[12, 30]``, one token per limb, zeros in padded slots;
* ``mask``: float32 ``[MAX_LIMBS]``, 1 for a real limb; ``action_mask``: 1 for a limb with an actuated joint
  (the torso has none);
* ``body``: index of the body in ``BODIES``; ``task``: index of the task in ``TASKS``.

Actions: ``Box(-1, 1, (MAX_LIMBS,))``, one per limb slot, mapped onto the limb's actuator ctrlrange; entries of
the torso and of padded slots are ignored. Limbs are the torso and every body with a hinge, in XML order.

Token layout (``TOKEN_FIELDS``, ``TOKEN_SLICES``):

=====  ================  ==================================================================================
index  field             meaning
=====  ================  ==================================================================================
0      joint_pos         angle of the limb's hinge (rad); 0 for the torso
1      joint_vel         angular velocity of the hinge (rad/s, clipped to ±10); 0 for the torso
2-4    position          limb centre of mass: x, y relative to the torso origin, z above the floor (m)
5-8    orientation       orientation of the limb's frame in the world, quaternion (w, x, y, z)
9-11   linear_velocity   world-frame linear velocity of the limb's centre of mass (m/s, clipped to ±10)
12-14  angular_velocity  world-frame angular velocity of the limb (rad/s, clipped to ±10)
15     length            summed length of the limb's geoms (m)
16     radius            largest geom radius of the limb (m)
17     mass              mass of the limb and the jointless bodies welded to it (kg)
18-19  joint_range       hinge limits (rad); (-pi, pi) when unlimited; 0, 0 for the torso
20-22  joint_axis        hinge axis in the limb's frame; 0 for the torso
23     gear              actuator gear / 100; 0 when not actuated
24     is_root           1 for the torso
25     depth             limbs between this limb and the torso
26-29  family            one-hot of hopper, walker2d, half_cheetah, ant
=====  ================  ==================================================================================

Fields 0-14 change every step, 15-29 describe the body.

Splits: ``TRAIN_BODIES`` (12, three per family) and ``HELD_OUT_BODIES`` (4, one per family); ``TRAIN_TASKS``
(run_forward, run_backward, target_speed) and ``HELD_OUT_TASKS`` (stand_tall). Indices run over train then held
out, so a controller trained on the train split with ``num_bodies=len(TRAIN_BODIES)`` grows its tables for the
held-out ones.

Version rule: ``SUITE_VERSION`` ("2"; version 1 narrowed a joint range past the rest pose and left the ant's health height unscaled) names everything here. Changing a body (its table row, the generator or the
gymnasium asset it starts from), a task, the token layout or the episode rules means a new ``SUITE_VERSION`` (and
new ids), so that numbers measured on one version are never compared with another. The tests pin the hash of a
generated XML so that a silent change fails.

Install: ``pip install "hf-learngene[control]"`` (gymnasium >= 1.4, mujoco >= 3.3).
"""

from .bodies import (
    BODIES,
    BODY_SPECS,
    BODY_SPLIT,
    FAMILY_SPECS,
    HELD_OUT_BODIES,
    HELD_OUT_BODY_SPECS,
    NUM_BODIES,
    TRAIN_BODIES,
    TRAIN_BODY_SPECS,
    Body,
    BodySpec,
    DuplicateSegment,
    FamilySpec,
    RemoveBody,
    ScaleLength,
    ScaleMass,
    ScaleRange,
    body_index,
    body_xml_sha256,
    cache_dir,
    generate_xml,
    get_body,
    get_body_spec,
)
from .errors import (
    InvalidActionError,
    MorphologyError,
    TooManyLimbsError,
    UnknownBodyError,
    UnknownTaskError,
    UnsupportedJointError,
)
from .splits import SuiteSplit
from .suite import (
    DEFAULT_MAX_EPISODE_STEPS,
    TRAIN_PAIRS,
    MorphologyEnv,
    env_id,
    make_env,
    make_vector_env,
    register_envs,
)
from .tasks import (
    HELD_OUT_TASKS,
    NUM_TASKS,
    TASK_SPECS,
    TASK_SPLIT,
    TASKS,
    TRAIN_TASKS,
    TaskSpec,
    get_task,
    task_index,
)
from .tokens import (
    DYNAMIC_DIM,
    FAMILIES,
    MAX_LIMBS,
    SUITE_VERSION,
    TOKEN_DIM,
    TOKEN_FIELDS,
    TOKEN_SLICES,
    LimbLayout,
)

register_envs()

__all__ = [
    "BODIES", "BODY_SPECS", "BODY_SPLIT", "DEFAULT_MAX_EPISODE_STEPS", "DYNAMIC_DIM", "FAMILIES", "FAMILY_SPECS",
    "HELD_OUT_BODIES", "HELD_OUT_BODY_SPECS", "HELD_OUT_TASKS", "MAX_LIMBS", "NUM_BODIES", "NUM_TASKS",
    "SUITE_VERSION", "SuiteSplit", "TASKS", "TASK_SPECS", "TASK_SPLIT", "TOKEN_DIM", "TOKEN_FIELDS", "TOKEN_SLICES", "TRAIN_BODIES",
    "TRAIN_BODY_SPECS", "TRAIN_PAIRS", "TRAIN_TASKS", "Body", "BodySpec", "DuplicateSegment", "FamilySpec",
    "InvalidActionError", "LimbLayout", "MorphologyEnv", "MorphologyError", "RemoveBody", "ScaleLength", "ScaleMass",
    "ScaleRange", "TaskSpec", "TooManyLimbsError", "UnknownBodyError", "UnknownTaskError", "UnsupportedJointError",
    "body_index", "body_xml_sha256", "cache_dir", "env_id", "generate_xml", "get_body", "get_body_spec", "get_task",
    "make_env", "make_vector_env", "register_envs", "task_index",
]
