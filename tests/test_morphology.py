"""The morphology suite (issue 13): procedural MuJoCo bodies, limb tokens, tasks, splits and registered ids."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import gymnasium  # installed by the test extra (.ci/run): never skipped
import mujoco

import hf_learngene.morphology as M  # noqa: E402
from hf_learngene.morphology import bodies as bodies_module  # noqa: E402
from hf_learngene.morphology.tokens import TOKEN_SLICES  # noqa: E402

# Pinned: a change of the generator, the table or gymnasium's hopper.xml changes this and must come with a new
# SUITE_VERSION (and then a new pin).
HOPPER_EXTRA_SHIN_SHA256 = "9376fa2e42ac13301461c06e9a2c42e37241bd3859e48ae14c7d9f320af6dd3b"


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory):
    """Generated XML goes to a throwaway folder, not the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_LEARNGENE_MORPHOLOGY_CACHE", str(tmp_path_factory.mktemp("morphology-cache")))
    yield
    patch.undo()


def _compile(text: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(text)


def _run(env, actions, seed=0):
    """Observations, rewards and infos of a fixed action sequence from a seeded reset."""
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    rewards, infos = [], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return trace, rewards, infos


# --- bodies -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", M.BODIES)
def test_every_body_loads_starts_healthy_and_steps(body):
    env = M.MorphologyEnv(body, "run_forward")
    obs, _ = env.reset(seed=0)
    assert env.is_healthy, f"{body} starts unhealthy (spawned too low or its health range is wrong)"
    assert env.observation_space.contains(obs)
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, M.MAX_LIMBS).astype(np.float32))
        assert env.observation_space.contains(obs)
        assert np.isfinite(obs["tokens"]).all() and np.isfinite(reward)
        assert np.isfinite(env.state_vector()).all()
        if terminated:
            obs, _ = env.reset()
    env.close()


def test_stock_bodies_equal_gymnasiums_models():
    """The generator is faithful: with no edits it rebuilds the stock model (half_cheetah's settotalmass is
    folded into densities, which must give the same masses)."""
    for family in M.FAMILIES:
        root = ET.parse(bodies_module.gymnasium_assets() / M.FAMILY_SPECS[family].xml_file).getroot()
        total_mass = root.find("compiler").attrib.pop("settotalmass", None)  # deprecated in MuJoCo 4: apply it here
        stock = _compile(ET.tostring(root, encoding="unicode"))
        if total_mass is not None:
            mujoco.mj_setTotalmass(stock, float(total_mass))
        ours = _compile(M.generate_xml(family))
        assert (ours.nbody, ours.njnt, ours.nu, ours.ngeom) == (stock.nbody, stock.njnt, stock.nu, stock.ngeom)
        for field in ("body_pos", "body_mass", "body_inertia", "jnt_range", "geom_size", "actuator_gear", "qpos0"):
            np.testing.assert_allclose(getattr(ours, field), getattr(stock, field), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{family}: {field}")


def _anchors(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    return {model.joint(j).name: data.xanchor[j].copy() for j in range(model.njnt)}


def test_edits_do_what_they_say():
    stock = _compile(M.generate_xml("hopper"))
    a = _anchors(stock)
    hip_to_ankle = np.linalg.norm(a["foot_joint"] - a["thigh_joint"])

    # Whole limb halved about the hip.
    half = _compile(M.generate_xml(M.BodySpec("t", "hopper", (M.ScaleLength("thigh", 0.5),))))
    b = _anchors(half)
    assert np.linalg.norm(b["foot_joint"] - b["thigh_joint"]) == pytest.approx(0.5 * hip_to_ankle, rel=1e-4)

    # Only the shin: knee to ankle grows 1.5x, the foot keeps its size.
    shin = _compile(M.generate_xml(M.BodySpec("t", "hopper", (M.ScaleLength("leg", 1.5, subtree=False),))))
    c = _anchors(shin)
    assert np.linalg.norm(c["foot_joint"] - c["leg_joint"]) == pytest.approx(
        1.5 * np.linalg.norm(a["foot_joint"] - a["leg_joint"]), rel=1e-4)
    assert shin.geom("foot_geom").size == pytest.approx(stock.geom("foot_geom").size)
    assert shin.geom("leg_geom").size[1] == pytest.approx(1.5 * stock.geom("leg_geom").size[1], rel=1e-4)

    heavy = _compile(M.generate_xml(M.BodySpec("t", "hopper", (M.ScaleMass(2.0),))))
    assert heavy.body_mass.sum() == pytest.approx(2.0 * stock.body_mass.sum(), rel=1e-4)

    narrow = _compile(M.generate_xml(M.BodySpec("t", "hopper", (M.ScaleRange(0.5),))))
    widths, narrowed = np.diff(stock.jnt_range, axis=1), np.diff(narrow.jnt_range, axis=1)
    # half as wide about the centre, unless that would leave out the rest angle 0, which stays inside
    assert np.all(narrowed <= widths + 1e-6) and np.all(narrowed >= 0.5 * widths - 1e-6)
    holds_rest = (stock.jnt_range[:, 0] <= 0) & (stock.jnt_range[:, 1] >= 0)
    assert np.all(narrow.jnt_range[holds_rest, 0] <= 0) and np.all(narrow.jnt_range[holds_rest, 1] >= 0)
    centred = holds_rest & (np.abs(stock.jnt_range.sum(axis=1)) < 1e-9)  # symmetric ranges: exactly half
    np.testing.assert_allclose(narrowed[centred], 0.5 * widths[centred], rtol=1e-4)
    assert centred.any() and (narrowed[~centred & holds_rest] > 0.5 * widths[~centred & holds_rest]).any()
    np.testing.assert_allclose(narrow.jnt_range[centred].mean(axis=1), stock.jnt_range[centred].mean(axis=1),
                               atol=1e-6)

    longer = _compile(M.generate_xml(M.BodySpec("t", "hopper", (M.DuplicateSegment("leg"),))))
    assert (longer.nu, longer.njnt) == (stock.nu + 1, stock.njnt + 1)
    d = _anchors(longer)
    shin_vector = a["foot_joint"] - a["leg_joint"]
    np.testing.assert_allclose(d["leg_joint_2"] - d["leg_joint"], shin_vector, atol=1e-5)
    np.testing.assert_allclose(d["foot_joint"] - d["leg_joint_2"], shin_vector, atol=1e-5)

    three = _compile(M.generate_xml(M.BodySpec("t", "ant", (M.RemoveBody("back_leg"),))))
    assert (three.nu, three.njnt) == (6, 7)
    assert "hip_3" not in {three.joint(j).name for j in range(three.njnt)}


def test_variants_keep_the_stock_ground_clearance():
    """Taller or shorter variants are lifted so that their feet start as high above the floor as the stock one's."""
    stock = M.get_body("hopper")
    tall = M.get_body("hopper_extra_shin")
    short = M.get_body("hopper_short_heavy")
    assert tall.torso_height > stock.torso_height > short.torso_height
    assert tall.height_ratio > 1.0 > short.height_ratio
    for body in (stock, tall, short):
        _, lowest = bodies_module._heights(mujoco.MjModel.from_xml_path(body.xml_path))
        assert lowest == pytest.approx(bodies_module._heights(mujoco.MjModel.from_xml_path(stock.xml_path))[1],
                                       abs=1e-4)


# --- tokens -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", M.BODIES)
def test_token_layout_and_masks_agree_with_the_body(body):
    env = M.MorphologyEnv(body, "run_forward")
    obs, _ = env.reset(seed=1)
    # Count limbs and actuators from the XML itself: the torso plus every body with a joint; one motor each.
    root = ET.parse(env.body.xml_path).getroot()
    torso = root.find("worldbody").find("body")
    limbs = 1 + sum(1 for b in torso.iter("body") if b is not torso and b.find("joint") is not None)
    motors = len(root.find("actuator"))
    tokens, mask, action_mask = obs["tokens"], obs["mask"], obs["action_mask"]
    assert tokens.shape == (M.MAX_LIMBS, M.TOKEN_DIM) and tokens.dtype == np.float32
    assert M.TOKEN_DIM == sum(width for _, width, _ in M.TOKEN_FIELDS)
    np.testing.assert_array_equal(mask, np.arange(M.MAX_LIMBS) < limbs)
    assert action_mask.sum() == motors == env.model.nu
    assert action_mask[0] == 0 and np.all(action_mask <= mask)
    assert not tokens[limbs:].any(), "padded slots must be zero"
    family = np.zeros(len(M.FAMILIES))
    family[M.FAMILIES.index(env.body.family)] = 1
    np.testing.assert_array_equal(tokens[:limbs, TOKEN_SLICES["family"]], np.tile(family, (limbs, 1)))
    np.testing.assert_array_equal(tokens[:limbs, TOKEN_SLICES["is_root"]].ravel(), np.arange(limbs) == 0)
    gear = tokens[:limbs, TOKEN_SLICES["gear"]].ravel()
    assert np.all((gear > 0) == (action_mask[:limbs] > 0))
    assert tokens[:limbs, TOKEN_SLICES["mass"]].sum() == pytest.approx(env.model.body_mass.sum(), rel=1e-5)
    depth = tokens[:limbs, TOKEN_SLICES["depth"]].ravel()
    assert depth[0] == 0 and np.all(depth[1:] >= 1)
    # Dynamic fields follow the simulation: each limb's joint angle is its hinge's qpos, and heights are above 0.
    layout = env.layout
    hinge = layout.joint_qpos_adr >= 0
    np.testing.assert_allclose(tokens[:limbs, 0][hinge], env.data.qpos[layout.joint_qpos_adr[hinge]], atol=1e-6)
    assert tokens[0, TOKEN_SLICES["position"]][2] == pytest.approx(env.torso_height, abs=0.2)
    quaternions = tokens[:limbs, TOKEN_SLICES["orientation"]]
    np.testing.assert_allclose(np.linalg.norm(quaternions, axis=1), 1.0, atol=1e-5)


def test_hopper_limbs_are_named_in_xml_order():
    layout = M.MorphologyEnv("hopper", "run_forward").layout
    assert layout.limb_names == ["torso", "thigh", "leg", "foot"]
    assert layout.root_joint_types == ("slide", "slide", "hinge")
    ant = M.MorphologyEnv("ant", "run_forward").layout
    assert ant.root_joint_types == ("free",)
    assert ant.num_limbs == 9 and ant.num_actuated == 8  # the jointless hip struts are welded to the torso


# --- actions and rewards ------------------------------------------------------------------------------------------


def test_masked_action_entries_have_no_effect():
    env_a = M.MorphologyEnv("half_cheetah_no_front_foot", "run_forward")
    env_b = M.MorphologyEnv("half_cheetah_no_front_foot", "run_forward")
    action_mask = env_a.layout.action_mask.astype(bool)
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1, 1, (15, M.MAX_LIMBS))
    scrambled = actions.copy()
    scrambled[:, ~action_mask] = rng.uniform(-1, 1, (15, int((~action_mask).sum())))
    trace_a, rewards_a, _ = _run(env_a, actions)
    trace_b, rewards_b, _ = _run(env_b, scrambled)
    for a, b in zip(trace_a, trace_b):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
    assert rewards_a == rewards_b
    # ... while changing one actuated entry does change the outcome (so the check above can fail).
    nudged = actions.copy()
    nudged[:, np.flatnonzero(action_mask)[0]] *= -1
    trace_c, _, _ = _run(M.MorphologyEnv("half_cheetah_no_front_foot", "run_forward"), nudged)
    assert not np.array_equal(trace_a[-1]["tokens"], trace_c[-1]["tokens"])


def test_actions_map_onto_the_actuator_ctrlrange():
    env = M.MorphologyEnv("walker2d", "run_forward")
    action = np.zeros(M.MAX_LIMBS)
    action[env.layout.actuator_limbs] = np.linspace(-1.5, 1.5, env.model.nu)  # beyond ±1 is clipped
    ctrl, clipped = env.action_to_ctrl(action)
    low, high = env.model.actuator_ctrlrange.T
    expected = np.clip(np.linspace(-1.5, 1.5, env.model.nu), -1, 1)
    np.testing.assert_allclose(clipped, expected)
    np.testing.assert_allclose(ctrl, low + (expected + 1) / 2 * (high - low))


def test_tasks_give_different_rewards_for_the_same_transition():
    rng = np.random.default_rng(5)
    actions = rng.uniform(-1, 1, (10, M.MAX_LIMBS))
    results = {task: _run(M.MorphologyEnv("hopper_extra_shin", task), actions) for task in M.TASKS}
    forward = results["run_forward"][2]
    steps = min(len(infos) for _, _, infos in results.values())
    assert steps >= 3
    for t in range(steps):
        vx = forward[t]["x_velocity"]
        assert vx != 0.0
        infos = {task: results[task][2][t] for task in M.TASKS}
        for task in M.TASKS:  # the same transition in every task ...
            assert infos[task]["x_velocity"] == vx
            assert infos[task]["reward_survive"] == infos["run_forward"]["reward_survive"]
            assert infos[task]["reward_ctrl"] == infos["run_forward"]["reward_ctrl"]
        # ... scored differently.
        assert infos["run_forward"]["reward_task"] == pytest.approx(vx)
        assert infos["run_backward"]["reward_task"] == pytest.approx(-vx)
        assert infos["target_speed"]["reward_task"] == pytest.approx(-abs(vx - 1.0))
        z0 = M.get_body("hopper_extra_shin").torso_height
        assert infos["stand_tall"]["reward_task"] == pytest.approx(infos["stand_tall"]["torso_height"] / z0)
        rewards = [results[task][1][t] for task in M.TASKS]
        assert len(set(rewards)) == len(M.TASKS)
        total = infos["run_forward"]
        assert results["run_forward"][1][t] == pytest.approx(
            total["reward_task"] + total["reward_survive"] + total["reward_ctrl"])


def test_health_checks_end_episodes_like_the_stock_envs():
    hopper = M.MorphologyEnv("hopper", "run_forward")
    hopper.reset(seed=0)
    qpos, qvel = hopper.data.qpos.copy(), hopper.data.qvel.copy()
    qpos[2] = 0.5  # torso pitched beyond the stock ±0.2 rad
    hopper.set_state(qpos, qvel)
    assert not hopper.is_healthy
    _, reward, terminated, _, info = hopper.step(np.zeros(M.MAX_LIMBS))
    assert terminated and info["reward_survive"] == 0.0
    cheetah = M.MorphologyEnv("half_cheetah", "run_forward")
    cheetah.reset(seed=0)
    qpos = cheetah.data.qpos.copy()
    qpos[2] = 3.0  # upside down: the stock half_cheetah never terminates
    cheetah.set_state(qpos, cheetah.data.qvel.copy())
    assert not cheetah.step(np.zeros(M.MAX_LIMBS))[2]


# --- registration, splits, versions -------------------------------------------------------------------------------


def test_registered_ids_make_through_gymnasium():
    ids = M.register_envs()
    assert len(ids) == len(set(ids)) == M.NUM_BODIES * M.NUM_TASKS
    assert M.register_envs() == ids  # idempotent
    assert all(name in gymnasium.registry for name in ids)
    assert M.env_id("ant", "stand_tall") == "hf_learngene/Morph-ant-stand_tall-v2"
    for body in ("hopper", "walker2d_extra_shins", "half_cheetah", "ant_three_legs"):
        env = gymnasium.make(M.env_id(body, "target_speed"))
        assert env.spec.max_episode_steps == M.DEFAULT_MAX_EPISODE_STEPS == 1000
        obs, _ = env.reset(seed=0)
        assert obs["body"] == M.body_index(body) and obs["task"] == M.task_index("target_speed")
        env.step(env.action_space.sample())
        env.close()
    short = M.make_env("half_cheetah", "run_backward", max_episode_steps=5)
    short.reset(seed=0)
    ends = [short.step(np.zeros(M.MAX_LIMBS))[3] for _ in range(5)]
    assert ends == [False] * 4 + [True]


def test_gymnasium_env_checker_passes():
    """gymnasium's own checks: spaces, seeded reset determinism, step and reset signatures."""
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")  # unbounded Box, as in the stock MuJoCo envs
        check_env(M.MorphologyEnv("ant_three_legs", "target_speed"), skip_render_check=True)


def test_vector_env_stacks_dict_observations():
    pairs = [("hopper", "run_forward"), ("ant_long_legs", "run_backward")]
    envs = M.make_vector_env(pairs, num_envs_per_pair=2)
    obs, _ = envs.reset(seed=0)
    assert obs["tokens"].shape == (4, M.MAX_LIMBS, M.TOKEN_DIM)
    assert obs["mask"].shape == obs["action_mask"].shape == (4, M.MAX_LIMBS)
    ant = M.body_index("ant_long_legs")
    np.testing.assert_array_equal(obs["body"], [0, 0, ant, ant])
    np.testing.assert_array_equal(obs["task"], [0, 0, 1, 1])
    np.testing.assert_array_equal(obs["mask"].sum(1), [4, 4, 9, 9])
    obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
    assert rewards.shape == (4,) and np.isfinite(rewards).all()
    envs.close()


def test_splits_are_disjoint_and_pinned():
    assert M.SUITE_VERSION == "2"
    assert M.TRAIN_BODIES == (
        "hopper", "hopper_extra_shin", "hopper_short_heavy", "walker2d", "walker2d_no_feet", "walker2d_long_wide",
        "half_cheetah", "half_cheetah_long_back", "half_cheetah_no_front_foot", "ant", "ant_three_legs",
        "ant_long_legs",
    )
    assert M.HELD_OUT_BODIES == (
        "hopper_long_narrow", "walker2d_extra_shins", "half_cheetah_extra_shin_light", "ant_three_short_legs")
    assert M.TRAIN_TASKS == ("run_forward", "run_backward", "target_speed")
    assert M.HELD_OUT_TASKS == ("stand_tall",)
    assert not set(M.TRAIN_BODIES) & set(M.HELD_OUT_BODIES)
    assert not set(M.TRAIN_TASKS) & set(M.HELD_OUT_TASKS)
    for split in (M.TRAIN_BODIES, M.HELD_OUT_BODIES):
        assert {M.get_body_spec(name).family for name in split} == set(M.FAMILIES)
    assert len(M.TRAIN_PAIRS) == len(M.TRAIN_BODIES) * len(M.TRAIN_TASKS)
    # The generated XML is deterministic and pinned.
    assert M.generate_xml("hopper_extra_shin") == M.generate_xml("hopper_extra_shin")
    assert M.body_xml_sha256("hopper_extra_shin") == HOPPER_EXTRA_SHIN_SHA256


def test_generated_files_are_cached_atomically():
    body = M.get_body("walker2d_no_feet")
    folder = M.cache_dir()
    assert body.xml_path.startswith(str(folder))
    with open(body.xml_path, encoding="utf-8") as file:
        assert file.read() == M.generate_xml("walker2d_no_feet")
    assert M.get_body("walker2d_no_feet") == body
    assert not list(folder.glob(".*.tmp")), "no temporary files left behind"


def test_a_custom_xml_runs_through_body_from_xml(tmp_path):
    path = tmp_path / "my_hopper.xml"
    path.write_text(M.generate_xml(M.BodySpec("mine", "hopper", (M.ScaleLength("foot", 1.3, subtree=False),))))
    body = M.Body.from_xml(path, "hopper", index=3)
    env = M.MorphologyEnv(body, "stand_tall")
    obs, _ = env.reset(seed=0)
    assert obs["body"] == 3 and obs["mask"].sum() == 4
    assert np.isfinite(env.step(np.zeros(M.MAX_LIMBS))[0]["tokens"]).all()


# --- errors -------------------------------------------------------------------------------------------------------


def test_unknown_body_and_task_list_the_valid_ones():
    with pytest.raises(M.UnknownBodyError, match=r"Unknown body 'hoper'.*hopper_extra_shin.*ant_three_short_legs"):
        M.make_env("hoper", "run_forward")
    with pytest.raises(M.UnknownTaskError, match=r"Unknown task 'jump'.*run_forward.*stand_tall"):
        M.MorphologyEnv("hopper", "jump")
    with pytest.raises(M.UnknownTaskError, match="Unknown task"):
        M.make_vector_env([("hopper", "run_forward"), ("ant", "fly")])
    with pytest.raises(M.MorphologyError, match="at least one"):
        M.make_vector_env([])
    with pytest.raises(M.MorphologyError, match=r"\(body, task\) tuple"):
        M.make_vector_env(["hopper"])
    with pytest.raises(M.MorphologyError, match="num_envs_per_pair"):
        M.make_vector_env([("hopper", "run_forward")], num_envs_per_pair=0)


def _hopper_root() -> ET.Element:
    return ET.fromstring(M.generate_xml("hopper"))


def test_unsupported_joint_names_the_joint_and_its_type(tmp_path):
    root = _hopper_root()
    leg_joint = next(j for j in root.iter("joint") if j.get("name") == "leg_joint")
    leg_joint.set("type", "ball")
    leg_joint.set("limited", "false")
    for key in ("axis", "range"):
        leg_joint.attrib.pop(key)
    path = tmp_path / "ball.xml"
    root.find("actuator").remove(next(m for m in root.find("actuator") if m.get("joint") == "leg_joint"))
    path.write_text(ET.tostring(root, encoding="unicode"))
    with pytest.raises(M.UnsupportedJointError, match=r"'leg_joint'.*ball joint.*only hinge"):
        M.MorphologyEnv(M.Body.from_xml(path, "hopper"), "run_forward")

    root = _hopper_root()
    leg = next(b for b in root.iter("body") if b.get("name") == "leg")
    ET.SubElement(leg, "joint", {"name": "twist", "type": "hinge", "axis": "0 0 1", "range": "-10 10"})
    path.write_text(ET.tostring(root, encoding="unicode"))
    with pytest.raises(M.UnsupportedJointError, match=r"two hinge joints.*'leg_joint'.*'twist'"):
        M.LimbLayout.from_model(mujoco.MjModel.from_xml_path(str(path)), "hopper")


def test_too_many_limbs_says_how_many_and_the_maximum():
    spec = M.BodySpec("centipede", "ant", tuple(M.DuplicateSegment(f"ankle_{i}") for i in range(1, 5)))
    model = _compile(M.generate_xml(spec))
    with pytest.raises(M.TooManyLimbsError, match=r"13 limbs.*MAX_LIMBS=12.*Remove 1"):
        M.LimbLayout.from_model(model, "ant")


def test_wrong_actions_are_refused():
    env = M.MorphologyEnv("ant", "run_forward")
    env.reset(seed=0)
    with pytest.raises(M.InvalidActionError, match=r"shape \(8,\); expected \(12,\)"):
        env.step(np.zeros(8))
    bad = np.zeros(M.MAX_LIMBS)
    bad[np.flatnonzero(env.layout.action_mask)[0]] = np.nan
    with pytest.raises(M.InvalidActionError, match="non-finite"):
        env.step(bad)
    masked_nan = np.zeros(M.MAX_LIMBS)
    masked_nan[0] = np.nan  # the torso slot is ignored, even when it holds garbage
    assert np.isfinite(env.step(masked_nan)[0]["tokens"]).all()


def test_bad_table_rows_and_edits_are_refused():
    with pytest.raises(M.MorphologyError, match="unknown family 'spider'"):
        M.BodySpec("x", "spider")
    with pytest.raises(M.MorphologyError, match=r"no body named 'tail'.*thigh"):
        M.generate_xml(M.BodySpec("x", "hopper", (M.ScaleLength("tail", 2.0),)))
    with pytest.raises(M.MorphologyError, match="torso cannot be duplicated"):
        M.generate_xml(M.BodySpec("x", "walker2d", (M.DuplicateSegment("torso"),)))
    with pytest.raises(M.MorphologyError, match="no geom of it has a fromto"):
        M.generate_xml(M.BodySpec("x", "hopper", (M.DuplicateSegment("foot"),)))
    with pytest.raises(M.MorphologyError, match="jitter"):
        M.BodySpec("x", "hopper", jitter=0.7)


@pytest.mark.parametrize("body", M.BODIES)
def test_every_body_stands_through_zero_actions(body):
    """A body that falls by itself (a joint range that excludes the rest pose, a health height the body
    outgrows) would make its returns meaningless: with zero actions each one lasts well past its start."""
    env = M.make_env(body, "run_forward", max_episode_steps=60)
    for seed in range(3):
        env.reset(seed=seed)
        for step in range(60):
            _, _, terminated, truncated, _ = env.step(np.zeros(M.MAX_LIMBS))
            assert not terminated, f"{body} fell at step {step} (seed {seed})"
            if truncated:
                break
    env.close()
