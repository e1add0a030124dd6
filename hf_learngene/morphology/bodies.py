"""Procedural bodies: variants of gymnasium's MuJoCo hopper, walker2d, half_cheetah and ant.

Each body of the suite is one row of a small declarative table (``BodySpec``): a base family, a list of edits
(``ScaleLength``, ``ScaleMass``, ``ScaleRange``, ``RemoveBody``, ``DuplicateSegment``) applied in order to the
family's stock XML, then an optional seeded jitter of every jointed segment's length and mass. The generator reads
the stock XML that ships inside gymnasium with ``xml.etree``, edits it, lifts the torso so that the body keeps the
stock model's ground clearance, and writes the result atomically to a cache folder under a name that carries a hash
of its text (so a stale file is never reused). The same table, seed and gymnasium assets always give the same XML.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from .errors import MorphologyError, UnknownBodyError
from .splits import SuiteSplit
from .tokens import FAMILIES, SUITE_VERSION


def gymnasium_assets() -> Path:
    """Folder of the MuJoCo XML files that ship inside gymnasium."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or spec.origin is None:
        raise ImportError('The morphology suite needs gymnasium and mujoco: pip install "hf-learngene[control]".')
    return Path(spec.origin).parent / "envs" / "mujoco" / "assets"


@dataclass(frozen=True)
class FamilySpec:
    """What the stock gymnasium v5 env of a family does, so that variants behave like it.

    ``healthy_*`` ranges are those of the stock env; a variant's z range is multiplied by its ``height_ratio``
    (standing height over the stock body's). ``healthy_reward=0`` means the family has no health check at all
    (half_cheetah never terminates).
    """

    name: str
    xml_file: str
    frame_skip: int
    ctrl_cost_weight: float
    healthy_reward: float
    healthy_z_range: tuple[float, float] | None
    healthy_angle_range: tuple[float, float] | None
    healthy_state_range: tuple[float, float] | None
    reset_noise_scale: float
    normal_velocity_noise: bool  # half_cheetah and ant draw qvel noise from a normal, hopper and walker uniformly


FAMILY_SPECS: dict[str, FamilySpec] = {
    "hopper": FamilySpec("hopper", "hopper.xml", 4, 1e-3, 1.0, (0.7, float("inf")), (-0.2, 0.2), (-100.0, 100.0),
                         5e-3, False),
    "walker2d": FamilySpec("walker2d", "walker2d_v5.xml", 4, 1e-3, 1.0, (0.8, 2.0), (-1.0, 1.0), None, 5e-3, False),
    "half_cheetah": FamilySpec("half_cheetah", "half_cheetah.xml", 5, 0.1, 0.0, None, None, None, 0.1, True),
    "ant": FamilySpec("ant", "ant.xml", 5, 0.5, 1.0, (0.2, 1.0), None, None, 0.1, True),
}


# --- edits -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleLength:
    """Scale the length of ``body`` about its joint: with ``subtree=True`` the whole limb below it (positions and
    capsule half-lengths, radii kept), else only that segment (the bodies below move with its tip, unscaled)."""

    body: str
    factor: float
    subtree: bool = True

    def apply(self, xml: "_BodyXml") -> None:
        element = xml.find_body(self.body)
        if self.subtree:
            xml.scale_subtree(element, self.factor)
        else:
            xml.scale_segment(element, self.factor)


@dataclass(frozen=True)
class ScaleMass:
    """Multiply geom densities (or masses) of ``body``'s subtree, or of the whole robot when ``body`` is None."""

    factor: float
    body: str | None = None

    def apply(self, xml: "_BodyXml") -> None:
        xml.scale_mass(self.factor, None if self.body is None else xml.find_body(self.body))


@dataclass(frozen=True)
class ScaleRange:
    """Narrow (factor < 1) or widen (factor > 1) every limited hinge range of ``body``'s subtree (or of the whole
    robot) about its centre."""

    factor: float
    body: str | None = None

    def apply(self, xml: "_BodyXml") -> None:
        xml.scale_ranges(self.factor, xml.torso if self.body is None else xml.find_body(self.body))


@dataclass(frozen=True)
class RemoveBody:
    """Cut ``body`` and everything below it, with the actuators of their joints."""

    body: str

    def apply(self, xml: "_BodyXml") -> None:
        xml.remove_body(xml.find_body(self.body))


@dataclass(frozen=True)
class DuplicateSegment:
    """Insert a copy of ``body``'s segment (its joint, geoms and actuator) right below it, making the limb one
    segment longer. The body must have one child body, or none and a ``fromto`` geom that marks its tip."""

    body: str

    def apply(self, xml: "_BodyXml") -> None:
        xml.duplicate_segment(xml.find_body(self.body))


Edit = ScaleLength | ScaleMass | ScaleRange | RemoveBody | DuplicateSegment


@dataclass(frozen=True)
class BodySpec:
    """One row of the body table: a base family, edits applied in order, then a seeded jitter.

    ``jitter`` j > 0 scales each jointed segment's length and its geoms' mass by factors drawn uniformly from
    [1 - j, 1 + j] with ``numpy.random.default_rng(seed)``, segment by segment in XML order, after the edits.
    """

    name: str
    family: str
    edits: tuple[Edit, ...] = ()
    seed: int = 0
    jitter: float = 0.0

    def __post_init__(self):
        if self.family not in FAMILY_SPECS:
            raise MorphologyError(f"BodySpec {self.name!r}: unknown family {self.family!r}; use one of {FAMILIES}.")
        if not 0.0 <= self.jitter < 0.5:
            raise MorphologyError(f"BodySpec {self.name!r}: jitter must be in [0, 0.5), got {self.jitter}.")


# The suite's bodies. Their order is their index in observations ("body"); train first, then held out.
# Changing any row (or adding one anywhere but the end of a new version) means a new SUITE_VERSION.
_ANKLES = ("ankle_1", "ankle_2", "ankle_3", "ankle_4")
TRAIN_BODY_SPECS: tuple[BodySpec, ...] = (
    BodySpec("hopper", "hopper"),
    BodySpec("hopper_extra_shin", "hopper", (DuplicateSegment("leg"),), seed=1, jitter=0.05),
    BodySpec("hopper_short_heavy", "hopper", (ScaleLength("thigh", 0.8), ScaleMass(1.3)), seed=2, jitter=0.05),
    BodySpec("walker2d", "walker2d"),
    BodySpec("walker2d_no_feet", "walker2d", (RemoveBody("foot"), RemoveBody("foot_left")), seed=3, jitter=0.05),
    BodySpec("walker2d_long_wide", "walker2d",
             (ScaleLength("thigh", 1.15), ScaleLength("thigh_left", 1.15), ScaleRange(1.2)), seed=4, jitter=0.05),
    BodySpec("half_cheetah", "half_cheetah"),
    BodySpec("half_cheetah_long_back", "half_cheetah", (ScaleLength("bthigh", 1.25),), seed=5, jitter=0.05),
    BodySpec("half_cheetah_no_front_foot", "half_cheetah", (RemoveBody("ffoot"), ScaleMass(0.8)), seed=6,
             jitter=0.05),
    BodySpec("ant", "ant"),
    BodySpec("ant_three_legs", "ant", (RemoveBody("back_leg"),), seed=7, jitter=0.05),
    BodySpec("ant_long_legs", "ant", tuple(ScaleLength(ankle, 1.3) for ankle in _ANKLES), seed=8, jitter=0.05),
)
HELD_OUT_BODY_SPECS: tuple[BodySpec, ...] = (
    BodySpec("hopper_long_narrow", "hopper", (ScaleLength("thigh", 1.2), ScaleRange(0.8), ScaleMass(1.2)), seed=9,
             jitter=0.05),
    BodySpec("walker2d_extra_shins", "walker2d", (DuplicateSegment("leg"), DuplicateSegment("leg_left")), seed=10,
             jitter=0.05),
    BodySpec("half_cheetah_extra_shin_light", "half_cheetah", (DuplicateSegment("bshin"), ScaleMass(0.7),
                                                               ScaleRange(1.2)), seed=11, jitter=0.05),
    BodySpec("ant_three_short_legs", "ant", (RemoveBody("right_back_leg"),) + tuple(
        ScaleLength(ankle, 0.8) for ankle in _ANKLES[:3]), seed=12, jitter=0.05),
)
BODY_SPECS: tuple[BodySpec, ...] = TRAIN_BODY_SPECS + HELD_OUT_BODY_SPECS
TRAIN_BODIES: tuple[str, ...] = tuple(spec.name for spec in TRAIN_BODY_SPECS)
HELD_OUT_BODIES: tuple[str, ...] = tuple(spec.name for spec in HELD_OUT_BODY_SPECS)
BODIES: tuple[str, ...] = TRAIN_BODIES + HELD_OUT_BODIES
NUM_BODIES = len(BODIES)


BODY_SPLIT = SuiteSplit("body", "bodies", TRAIN_BODIES, HELD_OUT_BODIES, UnknownBodyError)


def body_index(name: str) -> int:
    """Index of a body in ``BODIES`` (the ``"body"`` entry of its observations)."""
    return BODY_SPLIT.index(name)


def get_body_spec(name: str) -> BodySpec:
    return BODY_SPECS[body_index(name)]


# --- built bodies ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A body ready to simulate: its XML file, family, index and the heights its health check scales with."""

    name: str
    index: int
    family: str
    xml_path: str
    torso_height: float  # initial height of the torso origin above the floor (m)
    height_ratio: float  # (torso height - lowest point) over the stock body's, at the initial pose

    @property
    def family_spec(self) -> FamilySpec:
        return FAMILY_SPECS[self.family]

    @classmethod
    def from_xml(cls, xml_file: str | os.PathLike, family: str, name: str | None = None, index: int = 0) -> "Body":
        """Wrap any MuJoCo XML of a family (for instance a hand-edited variant) as a body; the limb tokeniser
        checks it when an environment is built."""
        if family not in FAMILY_SPECS:
            raise MorphologyError(f"Unknown family {family!r}; use one of {', '.join(FAMILIES)}.")
        path = Path(xml_file)
        if not path.is_file():
            raise FileNotFoundError(f"Body XML {str(path)!r} does not exist.")
        if not isinstance(index, int) or index < 0:
            raise MorphologyError(f"A body index must be a non-negative int, got {index!r}.")
        model = mujoco.MjModel.from_xml_path(str(path))
        return cls(name or path.stem, index, family, str(path), _heights(model)[0], _height_ratio(model, family))


def get_body(name: str) -> Body:
    """The suite's body ``name``, its XML generated and written to the cache folder if not there yet."""
    index = body_index(name)
    text, torso, ratio = _generated(name)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = _write_cached(f"{name}-{digest}.xml", text)
    return Body(name, index, BODY_SPECS[index].family, str(path), torso, ratio)


def generate_xml(spec: BodySpec | str) -> str:
    """The MuJoCo XML text of a body (a table name or any ``BodySpec``)."""
    if isinstance(spec, str):
        spec = get_body_spec(spec)
    family = FAMILY_SPECS[spec.family]
    root = ET.parse(gymnasium_assets() / family.xml_file).getroot()
    xml = _BodyXml(root)
    for edit in spec.edits:
        edit.apply(xml)
    if spec.jitter > 0:
        xml.jitter(np.random.default_rng(spec.seed), spec.jitter)
    # Keep the stock model's clearance between the lowest geom and the floor at the initial pose.
    _, lowest = _heights(mujoco.MjModel.from_xml_string(xml.text()))
    _, stock_lowest = _stock_heights(spec.family, clamped=False)
    xml.lift(stock_lowest - lowest)
    root.insert(0, ET.Comment(
        f" hf_learngene morphology suite v{SUITE_VERSION}: body {spec.name!r} of family {spec.family!r}, generated "
        f"from gymnasium's {family.xml_file}. Regenerate it, do not edit it. "
    ))
    return xml.text()


def body_xml_sha256(name: str) -> str:
    """SHA-256 of a body's generated XML: pins the suite (tests compare it to a stored value)."""
    return hashlib.sha256(generate_xml(name).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _generated(name: str) -> tuple[str, float, float]:
    spec = get_body_spec(name)
    text = generate_xml(spec)
    model = mujoco.MjModel.from_xml_string(text)
    torso = _heights(model)[0]
    return text, torso, _height_ratio(model, spec.family)


def _height_ratio(model: mujoco.MjModel, family: str) -> float:
    """(torso height - lowest point) over the stock body's, both with every joint clamped into its range:
    the pose the body settles into (the ant's legs start flat, outside their ankle ranges, and stand up)."""
    torso, lowest = _heights(model, clamped=True)
    stock_torso, stock_lowest = _stock_heights(family, clamped=True)
    return (torso - lowest) / (stock_torso - stock_lowest)


@functools.lru_cache(maxsize=None)
def _stock_heights(family: str, clamped: bool) -> tuple[float, float]:
    xml = _BodyXml(ET.parse(gymnasium_assets() / FAMILY_SPECS[family].xml_file).getroot())
    return _heights(mujoco.MjModel.from_xml_string(xml.text()), clamped)


def _heights(model: mujoco.MjModel, clamped: bool = False) -> tuple[float, float]:
    """(torso origin height, lowest point of any robot geom) at the model's initial pose, or with every
    limited hinge clamped into its range (``clamped``)."""
    data = mujoco.MjData(model)
    if clamped:
        for j in range(model.njnt):
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and model.jnt_limited[j]:
                address = model.jnt_qposadr[j]
                data.qpos[address] = np.clip(data.qpos[address], *model.jnt_range[j])
    mujoco.mj_kinematics(model, data)
    lowest = np.inf
    capsule, cylinder = int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_CYLINDER)
    sphere, box = int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_BOX)
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == 0:
            continue  # the floor and other world geoms
        z = data.geom_xpos[g, 2]
        axis_z = abs(data.geom_xmat[g].reshape(3, 3)[2, 2])
        size = model.geom_size[g]
        gtype = int(model.geom_type[g])
        if gtype == capsule:
            bottom = z - axis_z * size[1] - size[0]
        elif gtype == cylinder:
            bottom = z - axis_z * size[1] - size[0] * np.sqrt(max(0.0, 1.0 - axis_z**2))
        elif gtype == sphere:
            bottom = z - size[0]
        elif gtype == box:
            bottom = z - np.abs(data.geom_xmat[g].reshape(3, 3)[2]) @ size
        else:
            bottom = z - model.geom_rbound[g]
        lowest = min(lowest, bottom)
    root = next(b for b in range(1, model.nbody) if model.body_parentid[b] == 0 and model.body_jntnum[b] > 0)
    return float(data.xpos[root, 2]), float(lowest)


def cache_dir() -> Path:
    """Where generated XML files go: ``$HF_LEARNGENE_MORPHOLOGY_CACHE`` or ``~/.cache/hf_learngene/morphology``,
    then ``v<SUITE_VERSION>``."""
    base = os.environ.get("HF_LEARNGENE_MORPHOLOGY_CACHE")
    if base:
        root = Path(base)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hf_learngene" / "morphology"
    return root / f"v{SUITE_VERSION}"


def _write_cached(filename: str, text: str) -> Path:
    """Write ``text`` once under the cache folder (atomically: temp file + rename); a read-only home falls back
    to the system temp folder."""
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / "hf_learngene-morphology" / f"v{SUITE_VERSION}"):
        path = folder / filename
        if path.is_file():
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temp, path)
            return path
        except OSError:
            continue
    raise OSError(f"Could not write {filename} under {cache_dir()} nor the temp folder; set "
                  "HF_LEARNGENE_MORPHOLOGY_CACHE to a writable folder.")


# --- XML editing -------------------------------------------------------------------------------------------------


def _vector(element: ET.Element, attribute: str, size: int = 3) -> np.ndarray:
    text = element.get(attribute)
    return np.zeros(size) if text is None else np.array([float(x) for x in text.split()])


def _format(values) -> str:
    return " ".join(format(float(v) + 0.0, ".6g") for v in np.atleast_1d(values))


_ROTATIONS = ("quat", "euler", "axisangle", "xyaxes", "zaxis")


class _BodyXml:
    """A parsed stock model with the edit operations of the table (lengths, masses, ranges, limbs)."""

    def __init__(self, root: ET.Element):
        self.root = root
        self.worldbody = root.find("worldbody")
        self.torso = self.worldbody.find("body")
        self.actuator = root.find("actuator")
        defaults = root.find("default")
        geom_default = defaults.find("geom") if defaults is not None else None
        self.default_density = float(geom_default.get("density", 1000.0)) if geom_default is not None else 1000.0
        self.default_geom_type = geom_default.get("type", "sphere") if geom_default is not None else "sphere"
        # The ant carries an unused init_qpos of the stock joint count: drop it, variants change the joints.
        custom = root.find("custom")
        if custom is not None:
            root.remove(custom)
        # half_cheetah fixes its total mass with the compiler's settotalmass (deprecated in MuJoCo 4, and it would
        # undo every mass edit): fold it into the default density once, which gives the same masses and inertias.
        compiler = root.find("compiler")
        if compiler is not None and "settotalmass" in compiler.attrib:
            target = float(compiler.attrib.pop("settotalmass"))
            total = float(mujoco.MjModel.from_xml_string(self.text()).body_mass.sum())
            self.default_density *= target / total
            if defaults is None:
                defaults = ET.SubElement(root, "default")
            if geom_default is None:
                geom_default = ET.SubElement(defaults, "geom")
            geom_default.set("density", _format(self.default_density))
        # Unnamed bodies (the ant's lower legs) take the name of their joint, so the table can refer to them.
        for body in self.torso.iter("body"):
            if body.get("name") is None:
                joint = body.find("joint")
                body.set("name", self._unique(joint.get("name") if joint is not None else "link", "body"))

    def text(self) -> str:
        ET.indent(self.root, space="  ")
        return ET.tostring(self.root, encoding="unicode") + "\n"

    def _parents(self) -> dict[ET.Element, ET.Element]:
        return {child: parent for parent in self.root.iter() for child in parent}

    def find_body(self, name: str) -> ET.Element:
        for body in self.torso.iter("body"):
            if body.get("name") == name:
                return body
        names = [body.get("name") for body in self.torso.iter("body")]
        raise MorphologyError(f"The model has no body named {name!r}; its bodies are {', '.join(names)}.")

    def _unique(self, name: str, tag: str) -> str:
        taken = {element.get("name") for element in self.root.iter(tag)}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}_{n}", n + 1
        return candidate

    @staticmethod
    def _anchor(body: ET.Element) -> np.ndarray:
        """Where the body turns: its first joint's position in its own frame (its origin when it has none)."""
        joint = body.find("joint")
        return np.zeros(3) if joint is None else _vector(joint, "pos")

    def _geom_type(self, geom: ET.Element) -> str:
        return geom.get("type", self.default_geom_type)

    def scale_subtree(self, body: ET.Element, factor: float) -> None:
        """Scale all positions and capsule lengths of ``body``'s subtree about its joint; radii are kept."""
        anchor = self._anchor(body)
        body.set("pos", _format(_vector(body, "pos") + (1.0 - factor) * anchor))
        for element in body.iter():
            if element is body:
                continue
            if element.tag in ("body", "joint", "geom", "site", "camera", "inertial") and "pos" in element.attrib:
                element.set("pos", _format(_vector(element, "pos") * factor))
            if element.tag in ("geom", "site") and "fromto" in element.attrib:
                element.set("fromto", _format(_vector(element, "fromto", 6) * factor))
            elif element.tag == "geom":
                gtype = self._geom_type(element)
                if gtype in ("capsule", "cylinder"):
                    size = _vector(element, "size")
                    size[1] *= factor
                    element.set("size", _format(size))
                elif gtype != "sphere":
                    raise MorphologyError(
                        f"Cannot scale geom {element.get('name')!r} of type {gtype!r}: length edits support "
                        "capsule, cylinder and sphere geoms."
                    )

    def scale_segment(self, body: ET.Element, factor: float) -> None:
        """Scale only ``body``'s own segment: the child bodies keep their size and ride on its scaled tip."""
        self.scale_subtree(body, factor)
        for child in body.findall("body"):
            self.scale_subtree(child, 1.0 / factor)

    def scale_mass(self, factor: float, body: ET.Element | None) -> None:
        for geom in (self.torso if body is None else body).iter("geom"):
            self._scale_geom_mass(geom, factor)

    def _scale_geom_mass(self, geom: ET.Element, factor: float) -> None:
        if "mass" in geom.attrib:
            geom.set("mass", _format(float(geom.get("mass")) * factor))
        else:
            geom.set("density", _format(float(geom.get("density", self.default_density)) * factor))

    def scale_ranges(self, factor: float, body: ET.Element) -> None:
        for joint in body.iter("joint"):
            if "range" not in joint.attrib or joint.get("limited") == "false":
                continue
            low, high = _vector(joint, "range", 2)
            centre, half = (low + high) / 2.0, (high - low) / 2.0
            new_low, new_high = centre - factor * half, centre + factor * half
            # a range that holds the rest angle (0) keeps holding it: a narrowed range that excluded it
            # would fling the joint into its limit at every reset
            if low <= 0.0 <= high:
                new_low, new_high = min(new_low, 0.0), max(new_high, 0.0)
            joint.set("range", _format([new_low, new_high]))

    def remove_body(self, body: ET.Element) -> None:
        if body is self.torso:
            raise MorphologyError("The torso cannot be removed; remove one of its limbs instead.")
        joints = {joint.get("name") for joint in body.iter("joint")}
        self._parents()[body].remove(body)
        if self.actuator is not None:
            for motor in list(self.actuator):
                if motor.get("joint") in joints:
                    self.actuator.remove(motor)

    def duplicate_segment(self, body: ET.Element) -> None:
        if body is self.torso:
            raise MorphologyError("The torso cannot be duplicated; duplicate one of its limbs instead.")
        children = body.findall("body")
        anchor = self._anchor(body)
        if len(children) == 1:
            child = children[0]
            if any(key in child.attrib for key in _ROTATIONS):
                raise MorphologyError(f"Cannot duplicate {body.get('name')!r}: its child body is rotated.")
            step = _vector(child, "pos") + self._anchor(child) - anchor
        elif not children:
            tips = [_vector(geom, "fromto", 6)[3:] for geom in body.findall("geom") if "fromto" in geom.attrib]
            if not tips:
                raise MorphologyError(
                    f"Cannot duplicate leaf body {body.get('name')!r}: no geom of it has a fromto that marks its tip."
                )
            child, step = None, tips[0] - anchor
        else:
            raise MorphologyError(
                f"Cannot duplicate {body.get('name')!r}: it has {len(children)} child bodies; a segment to duplicate "
                "needs one child (or none)."
            )
        copy_body = ET.Element("body", {"name": self._unique(body.get("name"), "body"), "pos": _format(step)})
        renamed: dict[str, str] = {}
        for element in body:
            if element.tag not in ("joint", "geom", "site", "inertial"):
                continue
            duplicate = copy.deepcopy(element)
            if "name" in duplicate.attrib:
                duplicate.set("name", self._unique(duplicate.get("name"), duplicate.tag))
                if element.tag == "joint":
                    renamed[element.get("name")] = duplicate.get("name")
            copy_body.append(duplicate)
        if child is not None:
            body.remove(child)
            copy_body.append(child)
        body.append(copy_body)
        if self.actuator is not None:
            for motor in list(self.actuator):
                if motor.get("joint") in renamed:
                    duplicate = copy.deepcopy(motor)
                    duplicate.set("joint", renamed[motor.get("joint")])
                    if "name" in duplicate.attrib:
                        duplicate.set("name", self._unique(duplicate.get("name"), duplicate.tag))
                    self.actuator.append(duplicate)

    def jitter(self, rng: np.random.Generator, amount: float) -> None:
        """Scale each jointed segment's length, then its geoms' mass, by seeded factors in [1-amount, 1+amount]."""
        for body in [b for b in self.torso.iter("body") if b is not self.torso and b.find("joint") is not None]:
            length, mass = rng.uniform(1.0 - amount, 1.0 + amount, size=2)
            self.scale_segment(body, float(length))
            for geom in body.findall("geom"):
                self._scale_geom_mass(geom, float(mass))

    def lift(self, height: float) -> None:
        """Move the robot up by ``height`` (a planar root's rootz reference moves with it)."""
        height = round(height, 4)  # a tenth of a millimetre: the XML must not depend on float noise of the compiler
        if height == 0.0:
            return
        self.torso.set("pos", _format(_vector(self.torso, "pos") + np.array([0.0, 0.0, height])))
        for joint in self.torso.findall("joint"):
            if joint.get("type") == "slide" and "ref" in joint.attrib:
                joint.set("ref", _format(float(joint.get("ref")) + height))
