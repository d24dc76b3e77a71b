"""Captioned images in the layouts people have (issue 33): Flickr8k's two captions files and
COCO's JSON, images of any size and colour mode, and bad input named."""

import json

import numpy as np
import pytest

from rnnkit.data.captions import load_image, read_caption_set, read_captions

Image = pytest.importorskip("PIL.Image")


def _images(folder, names=("a.jpg", "b.png")):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (100, 50), (200, 10, 10)).save(folder / names[0])
    Image.new("L", (30, 40), 128).save(folder / names[1])
    return folder


def test_the_kaggle_flickr8k_layout_keeps_commas_in_captions(tmp_path):
    _images(tmp_path / "Images")
    (tmp_path / "captions.txt").write_text(
        "image,caption\na.jpg,A red box , seen from above .\na.jpg,a box\nb.png,grey\n"
    )
    data = read_caption_set(tmp_path)
    assert data.names == ["a.jpg", "b.png"] and data.folder == tmp_path / "Images"
    assert data.captions == [["A red box , seen from above .", "a box"], ["grey"]]
    assert data.parts == {}


def test_the_token_layout_and_part_files(tmp_path):
    _images(tmp_path / "Flicker8k_Dataset")
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tone\na.jpg#1\ttwo\nb.png#0\tthree\n")
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("a.jpg\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("b.png\n")
    data = read_caption_set(tmp_path)
    assert data.captions == [["one", "two"], ["three"]]
    assert data.part("train").names == ["a.jpg"] and data.part("test").captions == [["three"]]
    assert len(data.part("validation")) == 0


def test_the_coco_layout(tmp_path):
    _images(tmp_path / "images")
    coco = {
        "images": [{"id": 7, "file_name": "a.jpg"}, {"id": 9, "file_name": "b.png"}],
        "annotations": [
            {"image_id": 9, "caption": "grey square"},
            {"image_id": 7, "caption": "red"},
            {"image_id": 9, "caption": "a flat grey"},
        ],
    }
    (tmp_path / "captions_val2014.json").write_text(json.dumps(coco))
    data = read_caption_set(tmp_path)
    assert dict(zip(data.names, data.captions, strict=True)) == {
        "b.png": ["grey square", "a flat grey"],
        "a.jpg": ["red"],
    }


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "captions.txt",
            "image,caption\na.jpg,\n",
            r"txt:2: the caption of a.jpg is empty",
        ),
        (
            "captions.txt",
            "image,caption\nno comma here\n",
            r"txt:2: expected name,caption",
        ),
        ("Flickr8k.token.txt", "a.jpg one\n", r"token.txt:1: expected name#k<TAB>caption"),
        ("captions_x.json", "{}", r"captions_x.json: not COCO captions .*these layouts"),
        ("captions.txt", "image,caption\nc.jpg,a cat\n", r"1 of 1 captioned images are not in"),
    ],
)
def test_bad_captions_are_named(tmp_path, name, text, message):
    _images(tmp_path / "images")
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        read_caption_set(tmp_path)


def test_a_folder_without_captions_lists_the_layouts(tmp_path):
    with pytest.raises(ValueError, match="no captions file; rnnkit reads these layouts: captions"):
        read_caption_set(_images(tmp_path / "only-images"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_captions(tmp_path / "nothing.txt")


def test_images_of_any_size_and_mode_become_squares(tmp_path):
    folder = _images(tmp_path)
    Image.new("RGBA", (64, 64), (0, 0, 255, 40)).save(folder / "alpha.png")
    Image.new("P", (20, 90)).save(folder / "palette.png")
    wide = load_image(folder / "a.jpg", 32)
    assert wide.shape == (32, 32, 3) and wide.dtype == np.uint8
    assert np.abs(wide.astype(int) - (200, 10, 10)).max() <= 3  # JPEG's rounding
    assert (load_image(folder / "b.png", 16) == 128).all()  # grey to RGB
    assert load_image(folder / "alpha.png", 8)[0, 0].tolist() == [0, 0, 255]
    assert load_image(folder / "palette.png", 8).shape == (8, 8, 3)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match=r"broken.jpg: not a readable image"):
        load_image(folder / "broken.jpg", 8)
