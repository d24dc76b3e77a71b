"""The scene set behind captioning (issue 33): the grammar's captions are true of their
scenes by the parser's measure, one wrong word costs exactly what it should, and the splits
are what they claim."""

import json

import numpy as np
import pytest

from rnnkit.data import scenes
from rnnkit.data.captions import PART_FILES
from rnnkit.data.scenes import HELD_OUT, Thing, caption, correctness, parse, random_scene


def _scenes(count, seed=0, **options):
    rng = np.random.default_rng(seed)
    return [random_scene(rng, **options) for _ in range(count)], rng


def test_every_caption_the_grammar_writes_is_wholly_true():
    drawn, rng = _scenes(300)
    written = [caption(scene, rng) for scene in drawn]
    scores = correctness(written, drawn)
    assert scores | {"relations": 0} == {
        "object_precision": 1.0, "object_recall": 1.0, "count_accuracy": 1.0,
        "relation_accuracy": 1.0, "relations": 0, "exact": 1.0,
    }  # fmt: skip
    assert scores["relations"] > 50  # the grammar states relations often enough to be scored


def test_one_wrong_colour_is_exactly_one_object_wrong():
    scene = [Thing("circle", "red", "small", 0.2, 0.5), Thing("square", "blue", "large", 0.7, 0.5)]
    right = correctness(["a small red circle and a big blue square"], [scene])
    wrong = correctness(["a small green circle and a big blue square"], [scene])
    assert right["object_precision"] == right["object_recall"] == 1.0
    assert wrong["object_precision"] == wrong["object_recall"] == 0.5  # 1 of 2 said, 1 of 2 named
    assert wrong["count_accuracy"] == 1.0 and wrong["exact"] == 0.0


def test_relations_counts_and_missing_words_are_scored_as_stated():
    scene = [Thing("circle", "red", "small", 0.2, 0.5), Thing("square", "blue", "large", 0.7, 0.5)]
    assert correctness(["a small red circle left of a big blue square"], [scene])["exact"] == 1
    flipped = correctness(["a small red circle is to the right of a large blue square"], [scene])
    assert flipped["relation_accuracy"] == 0.0 and flipped["object_precision"] == 1.0
    miscounted = correctness(["three shapes: a small red circle and a big blue square"], [scene])
    assert miscounted["count_accuracy"] == 0.0
    vague = correctness(["a red circle and a square"], [scene])  # no sizes, no colour
    assert vague["object_precision"] == vague["object_recall"] == 0.0
    assert parse("a red circle and a square").mentions == (
        (None, "red", "circle"),
        (None, None, "square"),
    )
    assert correctness([""], [scene])["object_recall"] == 0.0


def test_relation_is_read_along_the_axis_of_greater_distance():
    centre = Thing("circle", "red", "small", 0.5, 0.5)
    assert scenes.relation(centre, Thing("circle", "red", "small", 0.9, 0.6)) == "left of"
    assert scenes.relation(centre, Thing("circle", "red", "small", 0.1, 0.4)) == "right of"
    assert scenes.relation(centre, Thing("circle", "red", "small", 0.55, 0.9)) == "above"
    assert scenes.relation(centre, Thing("circle", "red", "small", 0.45, 0.1)) == "below"


def test_the_drawn_canvas_shows_each_thing_in_its_colour():
    drawn, rng = _scenes(40, seed=3)
    for scene in drawn:
        image = scenes.draw(scene, rng, side=64)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        top = scene[-1]  # drawn last, so nothing covers its centre
        pixel = image[int(top.y * 64), int(top.x * 64)].astype(int)
        assert np.abs(pixel - scenes.COLOURS[top.colour]).max() <= 21


def test_the_compositional_split_holds_its_pairs_out_of_training(tmp_path):
    pytest.importorskip("PIL")
    out = scenes.make_scenes(tmp_path / "set", 60, split="compositional", seed=4)
    truth = scenes.read_scenes(out)
    parts = {part: (out / name).read_text().split() for part, name in PART_FILES.items()}
    assert [len(parts[p]) for p in ("train", "validation", "test")] == [42, 6, 12]
    for part, names in parts.items():
        for name in names:
            pairs = {(t.colour, t.shape) for t in truth[name]}
            assert bool(pairs & set(HELD_OUT)) == (part == "test"), (part, name)
    rows = (out / "captions.txt").read_text().splitlines()
    assert rows[0] == "image,caption" and len(rows) == 1 + 5 * 60
    image, text = rows[1].split(",", 1)
    assert correctness([text], [truth[image]])["exact"] == 1.0


def test_a_scene_set_is_the_same_from_the_same_seed_and_appears_whole(tmp_path):
    pytest.importorskip("PIL")
    first = scenes.make_scenes(tmp_path / "a", 12, seed=7)
    second = scenes.make_scenes(tmp_path / "b", 12, seed=7)
    for name in ("captions.txt", "scenes.json", "images/scene-00003.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert json.loads((first / "scenes.json").read_text())["split"] == "random"
    with pytest.raises(FileExistsError, match="exists"):
        scenes.make_scenes(first, 12)
    with pytest.raises(ValueError, match="split='cogent' is not one of"):
        scenes.make_scenes(tmp_path / "c", 12, split="cogent")
    with pytest.raises(ValueError, match=r"count=4 .* leaves a part empty"):
        scenes.make_scenes(tmp_path / "d", 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
