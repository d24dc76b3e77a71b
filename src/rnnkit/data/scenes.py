"""Scenes whose every caption can be checked: canvases of one to four shapes, the captions a
grammar writes of them, and the parser that reads a caption back into what it claims.

No captioned photo set can be installed here, and BLEU cannot say whether a caption is true.
A scene is a list of ``Thing``\\ s (shape × colour × size at a position); ``draw`` paints it
(position jitter, overlap, a noisy background of random shade), ``captions`` writes several
captions with paraphrases (sizes "small"/"little", "large"/"big"; lists with or without a
count; one spatial relation such as "left of" or "above" between two of the things), and
``parse`` reads any caption back into the things, count and relations it states.
``correctness`` scores captions against their scenes' truth: precision and recall of
(size, colour, shape) objects, count accuracy and relation accuracy.

Every caption of the grammar names every thing in its scene, so a caption the grammar writes
scores 100 % on every measure, and a caption with one wrong colour has exactly one object
wrong (one false mention, one missed object).

Two splits (``make_scenes``): ``random``, and ``compositional``, where the colour-shape
pairs ``HELD_OUT`` never appear in training and every test scene holds at least one of them
(CLEVR CoGenT's design): a model that has learnt "green" and "triangle" separately must
still say "green triangle" of a green triangle it has never seen.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .captions import PART_FILES, pillow

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (215, 45, 40),
    "green": (45, 175, 65),
    "blue": (55, 95, 225),
    "yellow": (230, 205, 45),
    "purple": (150, 70, 195),
}
SIZES = {"small": 0.09, "large": 0.16}  # the radius, as a fraction of the canvas side
# The compositional split's unseen pairs: one per shape, each of another colour.
HELD_OUT = (("red", "square"), ("green", "triangle"), ("blue", "circle"))
NUMBERS = ("one", "two", "three", "four")

# The grammar's paraphrases: the words it may write for each size and relation.
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
RELATION_WORDS = {
    "left of": ("left of", "to the left of"),
    "right of": ("right of", "to the right of"),
    "above": ("above", "over"),
    "below": ("below", "under"),
}


@dataclass(frozen=True)
class Thing:
    """One object of a scene: its kind and its centre (x right, y down, both in [0, 1])."""

    shape: str
    colour: str
    size: str
    x: float
    y: float

    @property
    def kind(self) -> tuple[str, str, str]:
        """(size, colour, shape): what a caption can say of it."""
        return (self.size, self.colour, self.shape)


def relation(a: Thing, b: Thing) -> str:
    """Where ``a`` is seen from ``b``, along the axis on which they are further apart: "left
    of", "right of", "above" or "below"."""
    dx, dy = b.x - a.x, b.y - a.y
    if abs(dx) >= abs(dy):
        return "left of" if dx > 0 else "right of"
    return "above" if dy > 0 else "below"


def random_scene(rng: np.random.Generator, *, held_out=(), require_held=False) -> list[Thing]:
    """One to four things with random kinds and positions; none of the colour-shape pairs
    ``held_out``, or (``require_held``) at least one of them. Things may overlap, but no
    centre lies closer to another than 0.8 of their radii summed, so each stays visible."""
    held = set(held_out)
    count = int(rng.integers(1, 5))
    while True:
        kinds = [(str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS)))) for _ in range(count)]
        pairs = [(colour, shape) for shape, colour in kinds]
        if require_held and not any(pair in held for pair in pairs):
            continue
        if not require_held and any(pair in held for pair in pairs):
            continue
        things = _placed(rng, kinds)
        if things is not None:
            return things


def _placed(rng, kinds) -> list[Thing] | None:
    things: list[Thing] = []
    for shape, colour in kinds:
        size = str(rng.choice(list(SIZES)))
        radius = SIZES[size]
        for _ in range(100):
            x, y = rng.uniform(radius, 1 - radius, size=2)
            clear = all(
                np.hypot(x - t.x, y - t.y) >= 0.8 * (radius + SIZES[t.size]) for t in things
            )
            if clear:
                things.append(Thing(shape, colour, size, round(float(x), 4), round(float(y), 4)))
                break
        else:
            return None  # too crowded: the caller draws other kinds
    return things


def draw(scene: list[Thing], rng: np.random.Generator, side: int = 64) -> np.ndarray:
    """The scene painted on a ``side`` × ``side`` RGB canvas (uint8): a background of a
    random dark shade with Gaussian noise, then each thing in order (later ones cover
    earlier ones), its colour jittered by up to ±20 per channel."""
    shade = rng.uniform(20, 70)
    canvas = shade + rng.normal(0, 8, size=(side, side, 3))
    rows, columns = np.mgrid[0:side, 0:side] + 0.5
    for thing in scene:
        x, y, r = thing.x * side, thing.y * side, SIZES[thing.size] * side
        dx, dy = columns - x, rows - y
        if thing.shape == "circle":
            inside = dx**2 + dy**2 <= r**2
        elif thing.shape == "square":
            inside = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
        else:  # an upright triangle: apex at the top, base below the centre
            inside = (dy <= 0.8 * r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 1.8)
        colour = np.array(COLOURS[thing.colour]) + rng.uniform(-20, 20, size=3)
        canvas[inside] = colour
    return np.clip(canvas, 0, 255).astype(np.uint8)


# --- the grammar ----------------------------------------------------------------------------


def _mention(thing: Thing, rng) -> str:
    return f"a {rng.choice(SIZE_WORDS[thing.size])} {thing.colour} {thing.shape}"


def _listed(mentions: list[str]) -> str:
    return mentions[0] if len(mentions) == 1 else f"{', '.join(mentions[:-1])} and {mentions[-1]}"


def caption(scene: list[Thing], rng: np.random.Generator) -> str:
    """One caption of ``scene`` from the grammar: every thing named once, in a random order,
    as a plain list, a list after its count, or with a relation between the first two."""
    order = [scene[i] for i in rng.permutation(len(scene))]
    mentions = [_mention(thing, rng) for thing in order]
    count = NUMBERS[len(scene) - 1]
    noun = "shape" if len(scene) == 1 else "shapes"
    forms = ["list", "count", "there"] + (["relation"] * 2 if len(scene) > 1 else [])
    form = rng.choice(forms)
    if form == "count":
        return f"{count} {noun}: {_listed(mentions)}"
    if form == "there":
        verb = "is" if len(scene) == 1 else "are"
        return f"there {verb} {count} {noun}: {_listed(mentions)}"
    if form == "relation":
        words = rng.choice(RELATION_WORDS[relation(order[0], order[1])])
        verb = rng.choice(["", "is "])
        first = f"{mentions[0]} {verb}{words} {mentions[1]}"
        return first if len(scene) == 2 else f"{first}, with {_listed(mentions[2:])}"
    return _listed(mentions)


def captions(scene: list[Thing], rng: np.random.Generator, count: int = 5) -> list[str]:
    """``count`` captions of ``scene`` (as Flickr8k gives five per image), distinct where
    the grammar has that many."""
    written: list[str] = []
    for _ in range(20 * count):
        text = caption(scene, rng)
        if text not in written:
            written.append(text)
        if len(written) == count:
            break
    written += written[:1] * (count - len(written))  # few paraphrases: the first repeats
    return written


# --- reading a caption back -------------------------------------------------------------------

_SIZE_OF = {word: size for size, words in SIZE_WORDS.items() for word in words}
_RELATION_OF = {word: name for name, words in RELATION_WORDS.items() for word in words}
# A mention: an optional size word, an optional colour, and a shape; what it leaves out is
# None, and counts as wrong.
_MENTION = re.compile(
    rf"\b(?:({'|'.join(_SIZE_OF)})\s+)?(?:({'|'.join(COLOURS)})\s+)?({'|'.join(SHAPES)})s?\b"
)
_COUNT = re.compile(rf"\b({'|'.join(NUMBERS)})\s+(?:shapes?|objects?|things?)\b")
_RELATIONS = "|".join(sorted(_RELATION_OF, key=len, reverse=True))  # "to the left of" first
_BETWEEN = re.compile(rf"^\s*(?:is\s+|are\s+)?({_RELATIONS})\s+(?:an?\s+)?$")


@dataclass(frozen=True)
class Claims:
    """What a caption states: the kinds it mentions ((size, colour, shape), an attribute it
    leaves out is None), the count it gives (or None), and its relations ((kind, relation,
    kind) between two mentions that follow each other)."""

    mentions: tuple
    count: int | None
    relations: tuple


def parse(text: str) -> Claims:
    """What the caption ``text`` states, read with the grammar's words (any case)."""
    text = text.lower()
    found = list(_MENTION.finditer(text))
    mentions = tuple(
        (_SIZE_OF.get(m.group(1)) if m.group(1) else None, m.group(2), m.group(3)) for m in found
    )
    counted = _COUNT.search(text)
    relations = []
    for i in range(len(found) - 1):
        between = _BETWEEN.match(text[found[i].end() : found[i + 1].start()])
        if between:
            relations.append((mentions[i], _RELATION_OF[between.group(1)], mentions[i + 1]))
    count = NUMBERS.index(counted.group(1)) + 1 if counted else None
    return Claims(mentions, count, tuple(relations))


def correctness(generated: list[str], scenes: list[list[Thing]]) -> dict:
    """How true the captions ``generated`` are of their ``scenes`` (one caption each):

    - ``object_precision``: the mentions that name a thing of the scene exactly (size,
      colour and shape), each thing matched once; ``object_recall``: the things so named.
    - ``count_accuracy``: captions whose count (stated, or else the number of mentions) is
      the number of things.
    - ``relation_accuracy``: stated relations that hold between two things of those kinds
      (over captions that state one; None where none does); ``relations``: how many.
    - ``exact``: captions with every measure right: every thing named, nothing else, the
      count and every relation true.
    """
    if len(generated) != len(scenes):
        raise ValueError(f"{len(generated)} captions for {len(scenes)} scenes: give one each")
    hits = said = things = counted = relations = true_relations = exact = 0
    for text, scene in zip(generated, scenes, strict=True):
        claims = parse(text)
        matched = sum((Counter(claims.mentions) & Counter(t.kind for t in scene)).values())
        count = claims.count if claims.count is not None else len(claims.mentions)
        holding = sum(_holds(stated, scene) for stated in claims.relations)
        hits, said, things = hits + matched, said + len(claims.mentions), things + len(scene)
        counted += count == len(scene)
        relations, true_relations = relations + len(claims.relations), true_relations + holding
        exact += (
            matched == len(claims.mentions) == len(scene)
            and count == len(scene)
            and holding == len(claims.relations)
        )
    return {
        "object_precision": hits / said if said else 0.0,
        "object_recall": hits / things if things else 0.0,
        "count_accuracy": counted / len(scenes) if scenes else 0.0,
        "relation_accuracy": true_relations / relations if relations else None,
        "relations": relations,
        "exact": exact / len(scenes) if scenes else 0.0,
    }


def _holds(stated, scene: list[Thing]) -> bool:
    """Whether some two things of the scene, of the kinds ``stated`` names, stand in its
    relation."""
    first, name, second = stated
    return any(
        a is not b and a.kind == first and b.kind == second and relation(a, b) == name
        for a in scene
        for b in scene
    )


# --- a scene set on disk, in Flickr8k's layout ------------------------------------------------

SPLITS = ("random", "compositional")


def make_scenes(out, count: int, *, split: str = "random", seed: int = 0, side: int = 64,
                per_image: int = 5, val: float = 0.1, test: float = 0.2,
                overwrite: bool = False) -> Path:  # fmt: skip
    """Write ``count`` scenes to the folder ``out`` as a captioned image set in Flickr8k's
    layout, and return it: ``images/scene-NNNNN.png`` (``side`` × ``side`` RGB),
    ``captions.txt`` (``image,caption`` rows, ``per_image`` an image), the three part
    files ``PART_FILES`` (a ``val`` and a ``test`` fraction of the images), and
    ``scenes.json``, the truth each caption is checked against. ``split``: "random", or
    "compositional" (train and validation never hold a pair of ``HELD_OUT``, every test
    scene holds one). The same ``seed`` writes the same files; the folder appears whole or
    not at all. Needs Pillow (``pip install 'rnnkit[vision]'``)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}")
    tested, held = round(count * test), round(count * val)
    if count < 3 or min(tested, held, count - tested - held) < 1:
        raise ValueError(
            f"count={count} with val={val} and test={test} leaves a part empty: each of "
            "train, validation and test needs an image"
        )
    image = pillow()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    parts = ["train"] * (count - tested - held) + ["validation"] * held + ["test"] * tested
    truth, rows, names = {}, ["image,caption"], {part: [] for part in PART_FILES}
    for number, part in enumerate(parts):
        unseen = split == "compositional"
        scene = random_scene(
            rng, held_out=HELD_OUT if unseen else (), require_held=unseen and part == "test"
        )
        name = f"scene-{number:05d}.png"
        image.fromarray(draw(scene, rng, side)).save(partial / "images" / name)
        truth[name] = [asdict(thing) for thing in scene]
        rows += [f"{name},{text}" for text in captions(scene, rng, per_image)]
        names[part].append(name)
    (partial / "captions.txt").write_text("\n".join(rows) + "\n")
    for part, file in PART_FILES.items():
        (partial / file).write_text("\n".join(names[part]) + "\n")
    about = {"split": split, "seed": seed, "side": side, "held_out": HELD_OUT if split ==
             "compositional" else [], "scenes": truth}  # fmt: skip
    (partial / "scenes.json").write_text(json.dumps(about, indent=1))
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


def read_scenes(folder) -> dict[str, list[Thing]]:
    """The truth of a scene set ``make_scenes`` wrote: {image name: its things}."""
    path = Path(folder) / "scenes.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; is {folder} a scene set?")
    return {
        name: [Thing(**row) for row in rows]
        for name, rows in json.loads(path.read_text())["scenes"].items()
    }
