"""Images of printed text lines, read column by column: the input of the ``transcribe`` task's
optical character recogniser, and the data it is tested on.

No public set of handwriting installs from PyPI or Debian (IAM and IAM-OnDB need a
registration; UNIPEN and UJIpenchars are not packaged; looked for on 2026-12-06), so the
recogniser reads printed lines instead: ``make_text_lines`` renders lines of a text in the
fonts this machine has (``font_files``: the DejaVu and STIX fonts matplotlib ships, and every
font fontconfig lists, handwriting fonts among them where Debian's ``fonts-*`` packages are
installed), at random sizes, with a random slant, blur and noise. Fonts are split by family
with a seeded shuffle: the test lines are set only in families training never sees.

``read_line_image`` turns an image file (PNG, JPEG, anything Pillow reads) into the frames a
recogniser reads: the image scaled to ``height`` pixels, ink 1 and paper 0, one frame per
pixel column, left to right: (width, height).
"""

from __future__ import annotations

import csv
import gzip
import re
import subprocess
from pathlib import Path

import numpy as np
import torch

CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789 .,;:'!?-"
TEST_FAMILIES = 0.25  # of the font families, set only in the test part
SIZES = (22, 40)  # font size in points (pixels at 72 dpi) before scaling to the height
SLANT = 0.25  # largest shear, either way
# Families whose glyphs for letters are not letters: symbols, dingbats, keycaps, placeholders.
NOT_TEXT = ("Symbol", "D050000L", "Last Resort", "Keyboard", "cmex10", "cmsy10")


def font_files() -> list[Path]:
    """Every TrueType/OpenType font matplotlib ships or fontconfig (``fc-list``) lists,
    sorted, without symbol fonts (those that lack the letters, and ``NOT_TEXT``)."""
    import matplotlib

    found = set((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf"))
    try:
        listed = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True).stdout
        found |= {Path(line.split(":")[0].strip()) for line in listed.splitlines() if line}
    except OSError:  # no fontconfig: matplotlib's fonts alone
        pass
    fonts = [p for p in found if p.suffix.lower() in (".ttf", ".otf") and covers(p, "az")]
    return sorted(f for f in fonts if not any(word in family(f) for word in NOT_TEXT))


def covers(font: Path, characters: str) -> bool:
    """Whether ``font`` has a glyph for each of ``characters`` (other than the space)."""
    from matplotlib.ft2font import FT2Font

    try:
        charmap = FT2Font(str(font)).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return False
    return all(ord(c) in charmap for c in characters if c != " ")


def family(font: Path) -> str:
    """The font's family name ("DejaVu Sans" for DejaVuSans-Bold.ttf)."""
    from matplotlib.ft2font import FT2Font

    return FT2Font(str(font)).family_name


def split_fonts(fonts: list[Path], seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(training fonts, test fonts): ``TEST_FAMILIES`` of the families held out whole (at
    least one, while two or more exist), by a seeded shuffle."""
    families = sorted({family(f) for f in fonts})
    if len(families) < 2:
        raise ValueError(f"the fonts found are of {len(families)} families: need two or more")
    order = np.random.default_rng(seed).permutation(len(families))
    held = {families[i] for i in order[: max(1, round(TEST_FAMILIES * len(families)))]}
    return [f for f in fonts if family(f) not in held], [f for f in fonts if family(f) in held]


def clean_text(text: str, characters: str = CHARACTERS) -> str:
    """``text`` lower-cased, with characters outside ``characters`` dropped and runs of white
    space made one space."""
    kept = "".join(c for c in text.lower().replace("\n", " ") if c in characters)
    return re.sub(r"\s+", " ", kept).strip()


def text_lines(text: str, count: int, rng: np.random.Generator, words=(2, 5)) -> list[str]:
    """``count`` lines of ``words`` (inclusive range) consecutive words of ``text``, each
    starting at a random word."""
    tokens = clean_text(text).split()
    if len(tokens) < words[1]:
        raise ValueError(f"the text has {len(tokens)} words: need at least {words[1]}")
    lines = []
    for _ in range(count):
        length = int(rng.integers(words[0], words[1] + 1))
        start = int(rng.integers(0, len(tokens) - length + 1))
        lines.append(" ".join(tokens[start : start + length]))
    return lines


def render_line(text: str, font: Path, height: int, rng: np.random.Generator) -> np.ndarray:
    """``text`` set in ``font`` as a grey image (uint8, dark ink on light paper) ``height``
    pixels high: a random size, slant, blur and noise, cropped to the ink with a margin."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    face = ImageFont.truetype(str(font), int(rng.integers(*SIZES)))
    left, top, right, bottom = face.getbbox(text)
    margin = 8
    canvas = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 255)
    ImageDraw.Draw(canvas).text((margin - left, margin - top), text, font=face, fill=0)
    shear = float(rng.uniform(-SLANT, SLANT))
    width = canvas.width + int(abs(shear) * canvas.height)
    offset = -shear * canvas.height if shear > 0 else 0.0
    canvas = canvas.transform(
        (width, canvas.height), Image.Transform.AFFINE, (1, shear, offset, 0, 1, 0), fillcolor=255
    )
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.0))))
    ink = np.asarray(canvas) < 200
    rows, columns = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if len(rows):  # crop to the ink, keeping a few pixels of paper around it
        pad = 3
        canvas = canvas.crop((
            max(columns[0] - pad, 0), max(rows[0] - pad, 0),
            min(columns[-1] + pad + 1, canvas.width), min(rows[-1] + pad + 1, canvas.height),
        ))  # fmt: skip
    scaled = canvas.resize((max(1, round(canvas.width * height / canvas.height)), height))
    pixels = np.asarray(scaled, dtype=np.float32)
    pixels = pixels + rng.normal(0, rng.uniform(0, 12), pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def read_line_image(path, height: int = 32) -> torch.Tensor:
    """(width, height) float32 frames of a line image: scaled to ``height`` pixels, ink 1
    and paper 0 (light-on-dark images are turned over), one frame per column."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            grey = image.convert("L")
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error
    if grey.width < 1 or grey.height < 1:
        raise ValueError(f"{path}: the image is empty")
    width = max(1, round(grey.width * height / grey.height))
    pixels = np.asarray(grey.resize((width, height)), dtype=np.float32) / 255
    if np.median(pixels) < 0.5:  # light ink on dark paper
        pixels = 1 - pixels
    return torch.from_numpy(np.ascontiguousarray((1 - pixels).T))


def make_text_lines(
    out,
    *,
    text: str | Path | None = None,
    train: int = 2000,
    test: int = 400,
    height: int = 32,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``train`` and ``test`` line images of ``text`` (a plain-text file, or None: the
    Zen of Python, which every Python has) under ``out``: PNG files in ``out/png`` and the
    manifests ``train.tsv`` and ``test.tsv`` (``path``, ``transcript``, ``speaker``: the
    font's family). Test lines are set only in font families training never sees."""
    from PIL import Image

    out = Path(out)
    (out / "png").mkdir(parents=True, exist_ok=True)
    if text is None:
        import codecs
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # importing it prints it
            import this
        source = codecs.decode(this.s, "rot13")
    else:
        path = Path(text)
        opened = gzip.open if path.suffix == ".gz" else open
        with opened(path, "rt", encoding="utf-8") as handle:
            source = handle.read()
    rng = np.random.default_rng(seed)
    fonts = [f for f in font_files() if covers(f, CHARACTERS)]
    train_fonts, test_fonts = split_fonts(fonts, seed)
    manifests = {}
    for part, count, pool in (("train", train, train_fonts), ("test", test, test_fonts)):
        rows = []
        for index, line in enumerate(text_lines(source, count, rng)):
            font = pool[int(rng.integers(len(pool)))]
            name = f"png/{part}-{index:05d}.png"
            Image.fromarray(render_line(line, font, height, rng)).save(out / name)
            rows.append((name, line, family(font)))
        manifests[part] = out / f"{part}.tsv"
        with open(manifests[part], "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerows([("path", "transcript", "speaker"), *rows])
    return manifests
