"""Captioned images as people keep them: a folder of images and a captions file in Flickr8k's
or COCO's layout, read into one ``CaptionSet``; images read with Pillow (``rnnkit[vision]``)
in any size and colour mode.

The captions layouts read (``LAYOUTS``):

- ``captions.txt``: a header ``image,caption``, then ``name,caption`` rows; the caption is
  everything after the first comma (Flickr8k as Kaggle ships it, and the scene sets of
  ``rnnkit.data.scenes``);
- ``Flickr8k.token.txt``: ``name#k<TAB>caption`` lines (Flickr8k as its authors ship it);
- COCO's ``captions_*.json``: ``{"images": [{"id", "file_name"}], "annotations":
  [{"image_id", "caption"}]}``.

An image may have any number of captions. The images are looked for beside the captions file,
in its ``images/``, ``Images/`` or ``Flicker8k_Dataset/`` folder, or in the folder given.
Flickr8k's part files (``Flickr_8k.trainImages.txt``, ``…devImages.txt``,
``…testImages.txt``) beside the captions fix the split by image where they exist.

Each image is made ``side`` × ``side`` RGB (``load_image``): its shorter side is scaled to
``side`` (bicubic) and the middle square cut out, as torchvision's ``Resize`` and
``CenterCrop`` do; a grey or paletted image is converted, an alpha channel dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LAYOUTS = (
    "captions.txt: an 'image,caption' header and name,caption rows (Flickr8k on Kaggle)",
    "Flickr8k.token.txt: name#k<TAB>caption lines (Flickr8k)",
    "captions_*.json: COCO's images and annotations",
)
IMAGE_FOLDERS = ("images", "Images", "Flicker8k_Dataset", "Flickr8k_Dataset")
PART_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "validation": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


@dataclass
class CaptionSet:
    """Images and their captions: ``names`` (file names, in the captions file's order),
    ``captions`` (a list per image), ``folder`` (where the images are), ``parts`` ({part:
    names} where the set fixes its split, else {}), ``source`` (the captions file)."""

    names: list[str]
    captions: list[list[str]]
    folder: Path
    source: str
    parts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, rows) -> CaptionSet:
        """The images ``rows`` (positions), with their captions, and the parts' lists of
        them."""
        rows = list(rows)
        names = [self.names[i] for i in rows]
        kept = set(names)
        parts = {part: [n for n in listed if n in kept] for part, listed in self.parts.items()}
        captions = [self.captions[i] for i in rows]
        return CaptionSet(names, captions, self.folder, self.source, parts)

    def part(self, name: str) -> CaptionSet:
        """The images the set's part file ``name`` lists ("train", "validation", "test")."""
        return self.split_off(name)[1]

    def split_off(self, name: str) -> tuple[CaptionSet, CaptionSet]:
        """(the images the part file ``name`` does not list, those it lists)."""
        wanted = set(self.parts.get(name, ()))
        inside = [image in wanted for image in self.names]
        return (self.subset(i for i, x in enumerate(inside) if not x),
                self.subset(i for i, x in enumerate(inside) if x))  # fmt: skip


def find_captions(folder) -> Path:
    """The captions file of the folder ``folder``, in one of ``LAYOUTS``."""
    folder = Path(folder)
    for pattern in ("captions.txt", "Flickr8k.token.txt", "captions_*.json", "*.token.txt"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    raise ValueError(
        f"{folder}: no captions file; rnnkit reads these layouts: {'; '.join(LAYOUTS)}"
    )


def read_captions(path) -> dict[str, list[str]]:
    """{image name: its captions} from a captions file in one of ``LAYOUTS``, in the file's
    order. An empty caption, or a row that is in no layout, is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".json":
        return _read_coco(path)
    from .readers import read_lines

    lines = read_lines(path)
    table = bool(lines) and lines[0].strip().lower().replace(" ", "") == "image,caption"
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(lines[1:] if table else lines, start=2 if table else 1):
        if not line.strip():
            continue
        if table:
            name, comma, text = line.partition(",")
        else:
            name, comma, text = line.partition("\t")
            name = name.rsplit("#", 1)[0] if "#" in name else ""
        name, text = name.strip(), text.strip().strip('"').strip()
        if not comma or not name:
            shape = "name,caption" if table else "name#k<TAB>caption"
            raise ValueError(
                f"{path}:{number}: expected {shape}, got {line[:80]!r}; rnnkit reads these "
                f"layouts: {'; '.join(LAYOUTS)}"
            )
        if not text:
            raise ValueError(f"{path}:{number}: the caption of {name} is empty")
        captions.setdefault(name, []).append(text)
    if not captions:
        raise ValueError(f"{path}: no captions")
    return captions


def _read_coco(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {image["id"]: image["file_name"] for image in data["images"]}
        notes = [(note["image_id"], note["caption"]) for note in data["annotations"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not COCO captions ({type(error).__name__}: {error}); rnnkit reads "
            f"these layouts: {'; '.join(LAYOUTS)}"
        ) from None
    captions: dict[str, list[str]] = {}
    for number, (image, text) in enumerate(notes):
        if image not in files:
            raise ValueError(f"{path}: annotation {number} names image id {image}, not listed")
        if not str(text).strip():
            raise ValueError(f"{path}: annotation {number} (image {files[image]}) is empty")
        captions.setdefault(files[image], []).append(str(text).strip())
    if not captions:
        raise ValueError(f"{path}: no captions")
    return captions


def read_caption_set(data, images=None) -> CaptionSet:
    """A ``CaptionSet`` from a folder (its captions file found by ``find_captions``) or a
    captions file, the images in ``images`` or found beside it (see the module). A caption
    row whose image is not there is an error that counts them and names the first."""
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"{data}: no such file or folder")
    source = find_captions(data) if data.is_dir() else data
    captions = read_captions(source)
    folder = Path(images) if images is not None else _image_folder(source.parent, captions)
    missing = [name for name in captions if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"{source}: {len(missing)} of {len(captions)} captioned images are not in "
            f"{folder}, e.g. {missing[0]!r}; give the image folder (--images)"
        )
    parts = {}
    for part, name in PART_FILES.items():
        listed = source.parent / name
        if listed.is_file():
            parts[part] = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
    return CaptionSet(list(captions), list(captions.values()), folder, str(source), parts)


def _image_folder(root: Path, captions: dict) -> Path:
    """The folder beside the captions that holds the first captioned image."""
    first = next(iter(captions))
    for folder in (root, *(root / name for name in IMAGE_FOLDERS)):
        if (folder / first).is_file():
            return folder
    return root / "images"


def pillow():
    """Pillow's ``Image`` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError("images need Pillow: pip install 'rnnkit[vision]'") from error
    return Image


def load_image(path, side: int) -> np.ndarray:
    """The image file ``path`` as ``side`` × ``side`` RGB, uint8 (side, side, 3): the shorter
    side scaled to ``side``, the middle square kept. An unreadable file is a ValueError
    naming it."""
    image_module = pillow()
    try:
        with image_module.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            scale = side / min(width, height)
            size = (max(side, round(width * scale)), max(side, round(height * scale)))
            image = image.resize(size, image_module.BICUBIC)
            left, top = (size[0] - side) // 2, (size[1] - side) // 2
            return np.asarray(image.crop((left, top, left + side, top + side)), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's ways of saying "not an image"
        raise ValueError(f"{path}: not a readable image ({error})") from None
