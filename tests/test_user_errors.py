"""Bad data is refused in the user's words, not in a model's (issue 29, item 3): a tag file
with a single tag, a table with a single class, and a validation part that leaves nothing to
train on. Each fails before a run directory is written."""

from click.testing import CliRunner

from rnnkit.cli import main


def _train(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_a_tag_file_with_only_o_tags_names_the_tag(tmp_path):
    path = tmp_path / "only_o.bio"
    path.write_text("".join(f"word{i}\tO\nend\tO\n\n" for i in range(20)))
    code, output = _train("tag", "train", "--data", path, "--epochs", 1, "--out", tmp_path / "run")
    assert code != 0
    assert "a single tag 'O'" in output and "at least two tags" in output
    assert "num_tags" not in output and not (tmp_path / "run").exists()


def test_a_table_with_one_class_names_the_file_and_the_class(tmp_path):
    path = tmp_path / "one.tsv"
    path.write_text("text\tlabel\n" + "".join(f"good film {i}\tpos\n" for i in range(30)))
    code, output = _train("classify", "train", "--data", path, "--epochs", 1,
                          "--out", tmp_path / "run")  # fmt: skip
    assert code != 0
    assert f"data='{path}' has a single class 'pos'" in output
    assert "num_classes" not in output and not (tmp_path / "run").exists()


def test_a_validation_part_that_takes_everything_is_named(tmp_path):
    path = tmp_path / "tags.bio"
    path.write_text("".join(f"Paris{i}\tB-loc\nis\tO\n\n" for i in range(4)))
    code, output = _train("tag", "train", "--data", path, "--val", 0.99, "--epochs", 1,
                          "--out", tmp_path / "run")  # fmt: skip
    assert code != 0
    assert "val=0.99 holds out all 4 sentences, leaving none to train on" in output
    assert "tensors" not in output and not (tmp_path / "run").exists()
