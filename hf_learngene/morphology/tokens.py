"""Limb tokens: one fixed-width feature vector per limb of a MuJoCo body, padded to ``MAX_LIMBS`` slots.

A *limb* is the root body (the torso) or any body with a joint of its own; bodies without joints are welded to
their parent and counted as part of the nearest limb above them (the ant's hip struts, for instance). Every limb
but the root carries exactly one hinge joint, so one action per limb drives the whole body. The token of a limb is
``TOKEN_DIM`` floats laid out as ``TOKEN_FIELDS`` says (dynamic fields first, then the static description).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from .errors import TooManyLimbsError, UnsupportedJointError

SUITE_VERSION = "2"
"""Version of the whole suite (bodies, tasks, token layout). Changing any of them means a new version."""

MAX_LIMBS = 12
"""Token slots per observation: limbs beyond this are refused, fewer are padded with zeros and masked."""

FAMILIES = ("hopper", "walker2d", "half_cheetah", "ant")
"""Base model families, in the order of the token's one-hot."""

VELOCITY_CLIP = 10.0
"""Velocities in tokens are clipped to ±this, as the stock hopper and walker observations are."""

TOKEN_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("joint_pos", 1, "angle of the limb's hinge (rad); 0 for the root"),
    ("joint_vel", 1, "angular velocity of the hinge (rad/s, clipped); 0 for the root"),
    ("position", 3, "centre of mass of the limb: x, y relative to the torso origin, z above the floor (m)"),
    ("orientation", 4, "orientation of the limb's frame in the world, unit quaternion (w, x, y, z)"),
    ("linear_velocity", 3, "world-frame linear velocity of the limb's centre of mass (m/s, clipped)"),
    ("angular_velocity", 3, "world-frame angular velocity of the limb (rad/s, clipped)"),
    ("length", 1, "summed length of the limb's geoms (capsule segments, sphere diameters) (m)"),
    ("radius", 1, "largest geom radius of the limb (m)"),
    ("mass", 1, "mass of the limb and the bodies welded to it (kg)"),
    ("joint_range", 2, "hinge limits low, high (rad); (-pi, pi) when unlimited; 0, 0 for the root"),
    ("joint_axis", 3, "hinge axis in the limb's own frame; 0 for the root"),
    ("gear", 1, "actuator gear / 100; 0 when the limb is not actuated"),
    ("is_root", 1, "1 for the torso, 0 otherwise"),
    ("depth", 1, "number of limbs between this limb and the torso (the torso is 0)"),
    ("family", len(FAMILIES), "one-hot of the base model family (hopper, walker2d, half_cheetah, ant)"),
)
"""(name, width, meaning) of each token field, in order."""

TOKEN_SLICES: dict[str, slice] = {}
_start = 0
for _name, _width, _ in TOKEN_FIELDS:
    TOKEN_SLICES[_name] = slice(_start, _start + _width)
    _start += _width
TOKEN_DIM = _start
"""Floats per limb token."""
DYNAMIC_DIM = TOKEN_SLICES["angular_velocity"].stop
"""The first ``DYNAMIC_DIM`` floats change every step; the rest describe the body and never change."""
del _start, _name, _width

_JOINT_TYPE_NAMES = {
    int(mujoco.mjtJoint.mjJNT_FREE): "free",
    int(mujoco.mjtJoint.mjJNT_BALL): "ball",
    int(mujoco.mjtJoint.mjJNT_SLIDE): "slide",
    int(mujoco.mjtJoint.mjJNT_HINGE): "hinge",
}


def _name(model: mujoco.MjModel, obj: mujoco.mjtObj, index: int) -> str:
    return mujoco.mj_id2name(model, obj, index) or f"#{index}"


@dataclass
class LimbLayout:
    """How a compiled MuJoCo model maps onto limb tokens and per-limb actions.

    Build it with ``LimbLayout.from_model``; it checks that the model fits the tokeniser (one hinge per limb,
    actuators on limb hinges only, at most ``MAX_LIMBS`` limbs) and precomputes the static half of every token.
    """

    family: str
    limb_names: list[str]
    limb_body_ids: np.ndarray  # [num_limbs] MuJoCo body id of each limb's own body
    joint_qpos_adr: np.ndarray  # [num_limbs] qpos address of the limb's hinge, -1 for the root
    joint_dof_adr: np.ndarray  # [num_limbs] dof address of the limb's hinge, -1 for the root
    actuator_limbs: np.ndarray  # [nu] the limb slot each actuator drives
    ctrl_low: np.ndarray  # [nu]
    ctrl_high: np.ndarray  # [nu]
    root_body_id: int
    root_joint_types: tuple[str, ...]  # e.g. ("slide", "slide", "hinge") or ("free",)
    root_hinge_qpos_adr: int  # qpos address of the root's pitch hinge (planar roots), -1 if none
    static_tokens: np.ndarray  # [MAX_LIMBS, TOKEN_DIM] with only the static fields filled
    mask: np.ndarray  # [MAX_LIMBS] float32, 1 = a real limb
    action_mask: np.ndarray  # [MAX_LIMBS] float32, 1 = the limb has an actuated joint

    @property
    def num_limbs(self) -> int:
        return len(self.limb_names)

    @property
    def num_actuated(self) -> int:
        return int(self.action_mask.sum())

    @classmethod
    def from_model(cls, model: mujoco.MjModel, family: str) -> "LimbLayout":
        if family not in FAMILIES:
            raise ValueError(f"Unknown body family {family!r}; the token's one-hot knows {', '.join(FAMILIES)}.")
        body = mujoco.mjtObj.mjOBJ_BODY
        joint = mujoco.mjtObj.mjOBJ_JOINT

        # The robot is the one subtree hanging from the world that can move; jointless world children are scenery.
        subtree_has_joint = np.zeros(model.nbody, dtype=bool)
        for b in range(model.nbody - 1, 0, -1):
            if model.body_jntnum[b] > 0:
                subtree_has_joint[b] = True
            if subtree_has_joint[b]:
                subtree_has_joint[model.body_parentid[b]] = True
        roots = [b for b in range(1, model.nbody) if model.body_parentid[b] == 0 and subtree_has_joint[b]]
        if len(roots) != 1:
            names = [_name(model, body, b) for b in roots]
            raise UnsupportedJointError(
                f"The model must hold exactly one movable body tree under the world; found {len(roots)}"
                f"{' (' + ', '.join(names) + ')' if names else ''}. Give the robot one root body (its torso) with a "
                "free joint or slide/hinge root joints."
            )
        root = roots[0]

        # Limbs in MuJoCo's body order (depth first, as written in the XML); welded bodies join their parent's limb.
        limb_of_body: dict[int, int] = {}
        limb_bodies: list[int] = []
        parent_limb: list[int] = []
        for b in range(1, model.nbody):
            if b == root:
                limb_of_body[b] = 0
                limb_bodies.append(b)
                parent_limb.append(-1)
                continue
            parent = model.body_parentid[b]
            if parent not in limb_of_body:
                continue  # scenery, not part of the robot
            if model.body_jntnum[b] > 0:
                limb_of_body[b] = len(limb_bodies)
                parent_limb.append(limb_of_body[parent])
                limb_bodies.append(b)
            else:
                limb_of_body[b] = limb_of_body[parent]
        if len(limb_bodies) > MAX_LIMBS:
            raise TooManyLimbsError(
                f"The {family} model has {len(limb_bodies)} limbs (bodies with a joint, plus the torso) but a token "
                f"observation holds at most MAX_LIMBS={MAX_LIMBS}. Remove {len(limb_bodies) - MAX_LIMBS} limb(s) or "
                "weld them (drop their joints)."
            )

        # Joints: the root may carry a free joint or planar slide/hinge joints; every other limb exactly one hinge.
        hinge = int(mujoco.mjtJoint.mjJNT_HINGE)
        joint_of_limb = [-1] * len(limb_bodies)
        root_types: list[str] = []
        root_hinge_qpos = -1
        for j in range(model.njnt):
            b = int(model.jnt_bodyid[j])
            if b not in limb_of_body:
                continue
            jtype = int(model.jnt_type[j])
            type_name = _JOINT_TYPE_NAMES.get(jtype, str(jtype))
            limb = limb_of_body[b]
            if limb == 0:
                if type_name == "ball":
                    raise UnsupportedJointError(
                        f"Root joint {_name(model, joint, j)!r} of body {_name(model, body, b)!r} is a ball joint; the "
                        "root supports a free joint or slide/hinge joints."
                    )
                root_types.append(type_name)
                if jtype == hinge and root_hinge_qpos < 0:
                    root_hinge_qpos = int(model.jnt_qposadr[j])
                continue
            if jtype != hinge:
                raise UnsupportedJointError(
                    f"Joint {_name(model, joint, j)!r} of limb {_name(model, body, b)!r} is a {type_name} joint; the "
                    "limb tokeniser supports only hinge joints on limbs (and a free or slide/hinge root)."
                )
            if joint_of_limb[limb] >= 0:
                raise UnsupportedJointError(
                    f"Limb {_name(model, body, b)!r} has two hinge joints ({_name(model, joint, joint_of_limb[limb])!r}"
                    f" and {_name(model, joint, j)!r}); a limb token carries one hinge. Split the limb into two "
                    "bodies, one hinge each."
                )
            joint_of_limb[limb] = j

        # Actuators: one per limb at most, each on a limb hinge.
        actuator_limbs = np.zeros(model.nu, dtype=np.int64)
        gear = np.zeros(len(limb_bodies))
        actuated = np.zeros(len(limb_bodies), dtype=bool)
        for a in range(model.nu):
            if int(model.actuator_trntype[a]) != int(mujoco.mjtTrn.mjTRN_JOINT):
                raise UnsupportedJointError(
                    f"Actuator {_name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a)!r} does not act on a joint; each "
                    "actuator must drive one limb hinge."
                )
            j = int(model.actuator_trnid[a, 0])
            limb = limb_of_body.get(int(model.jnt_bodyid[j]))
            if limb is None or limb == 0:
                raise UnsupportedJointError(
                    f"Actuator {_name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a)!r} drives joint "
                    f"{_name(model, joint, j)!r}, which is not a limb hinge (root joints stay passive)."
                )
            if actuated[limb]:
                raise UnsupportedJointError(
                    f"Limb {_limb_names(model, limb_bodies)[limb]!r} has two actuators; give each limb one."
                )
            actuated[limb] = True
            actuator_limbs[a] = limb
            gear[limb] = model.actuator_gear[a, 0]
        ctrl_low = np.full(model.nu, -1.0)
        ctrl_high = np.full(model.nu, 1.0)
        limited = model.actuator_ctrllimited.astype(bool)
        ctrl_low[limited] = model.actuator_ctrlrange[limited, 0]
        ctrl_high[limited] = model.actuator_ctrlrange[limited, 1]

        static = _static_tokens(model, family, limb_bodies, limb_of_body, parent_limb, joint_of_limb, gear)
        num = len(limb_bodies)
        mask = np.zeros(MAX_LIMBS, dtype=np.float32)
        mask[:num] = 1.0
        action_mask = np.zeros(MAX_LIMBS, dtype=np.float32)
        action_mask[:num] = actuated
        return cls(
            family=family,
            limb_names=_limb_names(model, limb_bodies),
            limb_body_ids=np.asarray(limb_bodies, dtype=np.int64),
            joint_qpos_adr=np.asarray([model.jnt_qposadr[j] if j >= 0 else -1 for j in joint_of_limb], np.int64),
            joint_dof_adr=np.asarray([model.jnt_dofadr[j] if j >= 0 else -1 for j in joint_of_limb], np.int64),
            actuator_limbs=actuator_limbs,
            ctrl_low=ctrl_low,
            ctrl_high=ctrl_high,
            root_body_id=root,
            root_joint_types=tuple(root_types),
            root_hinge_qpos_adr=root_hinge_qpos,
            static_tokens=static,
            mask=mask,
            action_mask=action_mask,
        )

    def tokens(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """The ``[MAX_LIMBS, TOKEN_DIM]`` float32 tokens of the current state (``data`` after ``mj_forward``/step)."""
        tokens = self.static_tokens.copy()
        num = self.num_limbs
        ids = self.limb_body_ids
        slots = np.flatnonzero(self.joint_qpos_adr >= 0)  # every limb but the root
        tokens[slots, TOKEN_SLICES["joint_pos"].start] = data.qpos[self.joint_qpos_adr[slots]]
        velocities = data.qvel[self.joint_dof_adr[slots]]
        tokens[slots, TOKEN_SLICES["joint_vel"].start] = np.clip(velocities, -VELOCITY_CLIP, VELOCITY_CLIP)
        position = data.xipos[ids].copy()
        position[:, :2] -= data.xpos[self.root_body_id, :2]
        tokens[:num, TOKEN_SLICES["position"]] = position
        tokens[:num, TOKEN_SLICES["orientation"]] = data.xquat[ids]
        velocity = np.zeros(6)
        for slot, b in enumerate(ids):
            mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, int(b), velocity, 0)
            tokens[slot, TOKEN_SLICES["angular_velocity"]] = np.clip(velocity[:3], -VELOCITY_CLIP, VELOCITY_CLIP)
            tokens[slot, TOKEN_SLICES["linear_velocity"]] = np.clip(velocity[3:], -VELOCITY_CLIP, VELOCITY_CLIP)
        return tokens


def _limb_names(model: mujoco.MjModel, limb_bodies: list[int]) -> list[str]:
    return [_name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in limb_bodies]


def _static_tokens(model, family, limb_bodies, limb_of_body, parent_limb, joint_of_limb, gear) -> np.ndarray:
    """The body description half of each token: geometry, mass, joint, actuator, tree position, family."""
    static = np.zeros((MAX_LIMBS, TOKEN_DIM), dtype=np.float32)
    capsule, cylinder = int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_CYLINDER)
    sphere, box = int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_BOX)
    length = np.zeros(len(limb_bodies))
    radius = np.zeros(len(limb_bodies))
    mass = np.zeros(len(limb_bodies))
    for b, limb in limb_of_body.items():
        mass[limb] += model.body_mass[b]
    for g in range(model.ngeom):
        limb = limb_of_body.get(int(model.geom_bodyid[g]))
        if limb is None:
            continue
        size = model.geom_size[g]
        gtype = int(model.geom_type[g])
        if gtype in (capsule, cylinder):
            length[limb] += 2.0 * size[1]
            radius[limb] = max(radius[limb], size[0])
        elif gtype == sphere:
            length[limb] += 2.0 * size[0]
            radius[limb] = max(radius[limb], size[0])
        elif gtype == box:
            length[limb] += 2.0 * size.max()
            radius[limb] = max(radius[limb], size.min())
        else:
            length[limb] += 2.0 * model.geom_rbound[g]
            radius[limb] = max(radius[limb], model.geom_rbound[g])
    family_index = FAMILIES.index(family)
    for limb in range(len(limb_bodies)):
        token = static[limb]
        token[TOKEN_SLICES["length"]] = length[limb]
        token[TOKEN_SLICES["radius"]] = radius[limb]
        token[TOKEN_SLICES["mass"]] = mass[limb]
        j = joint_of_limb[limb]
        if j >= 0:
            token[TOKEN_SLICES["joint_range"]] = model.jnt_range[j] if model.jnt_limited[j] else (-np.pi, np.pi)
            token[TOKEN_SLICES["joint_axis"]] = model.jnt_axis[j]
        token[TOKEN_SLICES["gear"]] = gear[limb] / 100.0
        token[TOKEN_SLICES["is_root"]] = 1.0 if limb == 0 else 0.0
        depth, parent = 0, parent_limb[limb]
        while parent >= 0:
            depth, parent = depth + 1, parent_limb[parent]
        token[TOKEN_SLICES["depth"]] = depth
        token[TOKEN_SLICES["family"].start + family_index] = 1.0
    return static
