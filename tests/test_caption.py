"""The captioning task (issue 33): its scores checked against worked examples and the COCO
evaluation code, the split by image, and the command line end to end on a small scene set."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnnkit import cli
from rnnkit.data.scenes import make_scenes
from rnnkit.metrics import cider_d
from rnnkit.tasks.caption import Captioner, bleu_scores, consensus

pytest.importorskip("PIL")
TINY = ["--side", "16", "--channels", "4,8", "--hidden-size", "8", "--embedding-dim", "4",
        "--epochs", "1", "--beam-size", "2", "--progress", "none"]  # fmt: skip


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def test_cider_d_of_worked_examples():
    references = [["a red circle above a square"], ["two green shapes on black"]]
    # Each caption's n-grams are in one image of two: IDF log 2, cosine 1 at every n.
    assert cider_d(["a red circle above a square", "two green shapes on black"], references) == 10
    # A caption without 4-grams scores 0 at n = 4: 3 of 4 orders, 7.5.
    assert cider_d(["two green shapes"], [["two green shapes"]]) == 0.0  # one image: IDF 0
    assert cider_d(["x y z", "p q r s"], [["x y z"], ["p q r s"]]) == pytest.approx(8.75)
    assert cider_d(["blue", "purple"], references) == 0.0
    # A word in every image's references weighs nothing (IDF log(2/2) = 0).
    assert cider_d(["a", "a"], [["a b"], ["a c"]]) == 0.0
    with pytest.raises(ValueError, match="2 hypotheses for 1 reference sets"):
        cider_d(["a", "b"], [["a"]])


def test_cider_d_equals_the_coco_evaluation_code():
    cider = pytest.importorskip("pycocoevalcap.cider.cider")
    rng = np.random.default_rng(0)
    words = [
        "a",
        "red",
        "small",
        "big",
        "circle",
        "square",
        "triangle",
        "left",
        "of",
        "above",
        "and",
        "blue",
        "green",
    ]

    def text(low, high):
        return " ".join(rng.choice(words, rng.integers(low, high)))

    references = [[text(3, 10) for _ in range(rng.integers(1, 6))] for _ in range(40)]
    hypotheses = [text(1, 11) for _ in range(40)]
    hypotheses[0] = references[0][0]
    theirs, _ = cider.Cider().compute_score(
        dict(enumerate(references)), {i: [h] for i, h in enumerate(hypotheses)}
    )
    assert cider_d(hypotheses, references) == pytest.approx(theirs, rel=1e-12)


def test_bleu_against_every_reference_and_the_consensus_caption():
    references = [["a big red circle", "one big red circle"], ["two blue squares on top"]]
    perfect = bleu_scores(["a big red circle", "two blue squares on top"], references)
    assert perfect["bleu1"] == pytest.approx(100) and perfect["bleu4"] == pytest.approx(100)
    scores = bleu_scores(["one big red circle", "two red squares"], references)
    assert 0 < scores["bleu4"] < scores["bleu1"] < 100
    candidates = ["a big red circle", "a red circle", "a small red circle", "two squares"]
    assert consensus(candidates) == "a red circle"


def test_the_split_is_by_image_and_follows_the_sets_parts(tmp_path):
    data = Captioner().read(make_scenes(tmp_path / "set", 40, side=16))
    estimator = Captioner(seed=3)
    train, test = estimator._hold_out_test(data, None)
    kept, held = estimator._split(train, None)
    assert test.names == data.parts["test"] and held.names == data.parts["validation"]
    assert not set(kept.names) & set(held.names) and not set(kept.names) & set(test.names)
    assert len(kept) + len(held) + len(test) == 40
    assert all(len(captions) == 5 for captions in kept.captions)
    # Without part files: a fixed fraction of the images, whatever the model's seed.
    plain = data.subset(range(40))
    plain.parts = {}
    first = Captioner(seed=1)._hold_out_test(plain, None)[1].names
    assert first == Captioner(seed=2)._hold_out_test(plain, None)[1].names and len(first) == 8


def test_train_evaluate_predict_and_load_back_from_the_command_line(tmp_path):
    data = make_scenes(tmp_path / "scenes", 40, side=16, split="compositional")
    out = tmp_path / "run"
    result = run("caption", "train", "--data", data, "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    assert "nearest_neighbour" in result.output and "obj P" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("model", "show_and_tell", "nearest_neighbour", "most_frequent"):
        entry = metrics["test"][name]
        assert {"bleu1", "bleu4", "cider_d", "object_precision", "exact"} <= set(entry)
    assert (out / "contact_sheet.png").stat().st_size > 0
    assert (out / "show_and_tell.safetensors").is_file()

    images = [data / "images" / "scene-00001.png", data / "images" / "scene-00002.png"]
    picture = tmp_path / "attention.png"
    shown = run("caption", "predict", "--run", out, *images, "--attention-png", picture)
    assert shown.exit_code == 0, shown.output and picture.stat().st_size > 0
    loaded = Captioner.load(out)
    assert shown.output.splitlines()[:2] == loaded.caption(images)
    evaluated = run("caption", "evaluate", "--run", out, "--data", data)
    assert evaluated.exit_code == 0 and "CIDEr-D" in evaluated.output, evaluated.output
    assert len(json.loads((out / "metrics.json").read_text())["evaluations"]) == 1


def test_a_folder_without_captions_is_refused_and_nothing_is_written(tmp_path):
    (tmp_path / "photos").mkdir()
    result = run("caption", "train", "--data", tmp_path / "photos", "--out", tmp_path / "run")
    assert result.exit_code == 1 and "rnnkit reads these layouts" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
    bad = run("caption", "train", "--data", tmp_path / "photos", "--out", tmp_path / "run",
              "--side", "60", "--channels", "4,8,16")  # fmt: skip
    assert "side=60 must be a multiple of 2^3" in bad.output


def test_the_encoder_starts_from_a_local_file_and_may_stay_frozen(tmp_path):
    import torch

    data = make_scenes(tmp_path / "scenes", 30, side=16)
    small = {"side": 16, "channels": (4, 8), "hidden_size": 8, "embedding_dim": 4,
             "epochs": 1, "baseline": False, "progress": "none"}  # fmt: skip
    first = Captioner(**small).fit(data)
    weights = first.save(tmp_path / "first") / "model.safetensors"
    second = Captioner(**small, seed=5, encoder_weights=str(weights), freeze_encoder=True)
    second.fit(data)
    for (name, a), b in zip(first.model_.encoder.state_dict().items(),
                            second.model_.encoder.state_dict().values(), strict=True):  # fmt: skip
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(a, b), name  # the weights stayed; batch statistics move on
    with pytest.raises(
        ValueError, match=r"does not fit an encoder of side=16 and channels=\(4, 16\)"
    ):
        Captioner(**(small | {"channels": (4, 16)}), encoder_weights=str(weights)).fit(data)
    with pytest.raises(ValueError, match=r"encoder_weights='nothing\.pt' must be the path of an"):
        Captioner(encoder_weights="nothing.pt").check_settings()
    with pytest.raises(ValueError, match="freeze_encoder=True keeps loaded weights"):
        Captioner(freeze_encoder=True).check_settings()


def test_train_on_scenes_it_makes_itself(tmp_path):
    out = tmp_path / "run"
    result = run("caption", "train", "--scenes", 20, "--split", "compositional", "--out", out,
                 *TINY, "--no-baseline")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Made 20 scenes (compositional split)" in result.output
    assert (tmp_path / "run-scenes" / "scenes.json").is_file() and (
        out / "model.safetensors"
    ).is_file()
    again = run("caption", "train", "--scenes", 30, "--out", tmp_path / "run", "--overwrite", *TINY)
    assert again.exit_code == 1 and "holds another scene set" in again.output
    both = run("caption", "train", "--scenes", 20, "--data", tmp_path / "run-scenes", "--out",
               tmp_path / "other", *TINY)  # fmt: skip
    assert both.exit_code == 2 and "give --data or the options that make the data" in both.output
    neither = run("caption", "train", "--out", tmp_path / "other", *TINY)
    assert neither.exit_code == 2 and not (tmp_path / "other").exists()
