"""Imports point down only: every import inside src/rnnkit, checked against the order of the
parts that the README's "## Layout" section lists, bottom first.

A part is the first name under ``rnnkit``: a subpackage (``cells/``, ``training/``) or a
module (``layers.py``). A part may import itself and the parts listed before it, never one
listed after it. The package root (``rnnkit/__init__.py``, ``__main__.py``) is the façade on
top: it may import anything, and nothing inside the package imports it. Every import counts:
absolute (``rnnkit.x``) and relative, at module level or inside a function.

``pytest -s tests/test_layering.py`` prints the order checked and the edges found.
"""

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGE = ROOT / "src" / "rnnkit"
FACADE = "the package root"  # the part of rnnkit/__init__.py and rnnkit/__main__.py
FACADE_FILES = ("__init__.py", "__main__.py")


# ---------------------------------------------------------------- the order


def read_layout(readme: str) -> list[str]:
    """The parts the "## Layout" section's fenced block lists under ``src/rnnkit/``, in order.

    The entries are the lines indented like the first one after ``src/rnnkit/``; the first
    token of each names the part (``cells/`` -> cells, ``layers.py`` -> layers). Lines
    indented deeper continue a description; a line indented less (``benchmarks/``) ends the
    list.
    """
    section = re.search(r"^## Layout[ \t]*\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
    if section is None:
        raise AssertionError("README.md has no '## Layout' section")
    block = re.search(r"^```[^\n]*\n(.*?)^```", section.group(1), flags=re.M | re.S)
    if block is None:
        raise AssertionError("the README's Layout section has no fenced block")
    lines = block.group(1).splitlines()
    top = [i for i, line in enumerate(lines) if line.strip() == "src/rnnkit/"]
    if not top:
        raise AssertionError("the README's Layout block has no 'src/rnnkit/' line")
    parts, indent = [], None
    for line in lines[top[0] + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent or depth == 0:
            break
        if depth > indent:
            continue
        token = line.split()[0]
        name = token[:-1] if token.endswith("/") else token.removesuffix(".py")
        if not name.isidentifier():
            raise AssertionError(f"the README's Layout entry {line.strip()!r} names no part")
        if name in parts:
            raise AssertionError(f"the README's Layout lists {token} twice")
        parts.append(name)
    if not parts:
        raise AssertionError("the README's Layout block lists no part under src/rnnkit/")
    return parts


# ---------------------------------------------------------------- the imports


@dataclass(frozen=True)
class Edge:
    module: str  # rnnkit.data.batching
    target: str  # rnnkit.training.reproducibility
    where: str  # src/rnnkit/data/batching.py:21


def module_name(package: Path, path: Path) -> str:
    """``rnnkit.data.batching`` for ``<package>/data/batching.py``; a package's __init__ is
    the package itself."""
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def part_of(module: str) -> str:
    """The part a module belongs to: the first name under the package, or the façade."""
    names = module.split(".")
    return FACADE if len(names) == 1 or names[1] == "__main__" else names[1]


def find_imports(package: Path) -> list[Edge]:
    """Every import of the package from inside it: absolute and relative, at any depth."""
    files = source_files(package)
    modules = {module_name(package, path) for path in files}
    root = package.name
    edges = []
    for path in files:
        module = module_name(package, path)
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        where = path.relative_to(package.parent.parent)  # src/rnnkit/...
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == root]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    origin = ".".join(base + (node.module.split(".") if node.module else []))
                else:
                    origin = node.module or ""
                if origin.split(".")[0] != root:
                    continue
                # ``from . import backends`` imports a module; ``from .. import __version__``
                # a name of the package it comes from.
                targets = [
                    f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin
                    for a in node.names
                ]
            for target in dict.fromkeys(targets):
                edges.append(Edge(module, target, f"{where}:{node.lineno}"))
    return edges


def parts_on_disk(package: Path) -> set[str]:
    """Every part the package has: its subpackages with Python in them and its modules."""
    parts = set()
    for path in package.iterdir():
        if path.name == "__pycache__" or path.name.startswith("."):
            continue
        if path.is_dir() and any(p.suffix == ".py" for p in path.rglob("*.py")):
            parts.add(path.name)
        elif path.suffix == ".py" and path.name not in FACADE_FILES:
            parts.add(path.stem)
    return parts


# ---------------------------------------------------------------- the check


def problems(order: list[str], edges: list[Edge], parts: set[str]) -> list[str]:
    """What breaks the rule: unlisted or vanished parts, upward and façade imports."""
    found = [
        f"src/rnnkit/{name} is a part that the README's Layout does not list; give it its "
        "place in the order there"
        for name in sorted(parts - set(order))
    ]
    found += [
        f"the README's Layout lists {name}, which src/rnnkit does not have"
        for name in order
        if name not in parts
    ]
    rank = {name: i for i, name in enumerate(order)}
    for edge in edges:
        a, b = part_of(edge.module), part_of(edge.target)
        if a in (FACADE, b):
            continue
        if b == FACADE:
            why = f"part {a} imports the package root, the façade that nothing inside imports"
        elif a not in rank or b not in rank:
            unlisted = " and ".join(sorted({a, b} - set(rank)))
            why = f"part {a} imports part {b}; {unlisted} is not in the README's Layout"
        elif rank[b] > rank[a]:
            why = f"part {a} imports part {b}, which is above it"
        else:
            continue
        found.append(f"{edge.module} -> {edge.target} ({why}) at {edge.where}")
    return found


def describe(order: list[str], edges: list[Edge]) -> str:
    """The order and the edges between parts, for ``pytest -s``."""
    rank = {name: i for i, name in enumerate(order)} | {FACADE: len(order)}
    counts = Counter(
        (part_of(e.module), part_of(e.target))
        for e in edges
        if part_of(e.module) != part_of(e.target)
    )
    lines = [
        "order checked, bottom to top: " + " < ".join([*order, "rnnkit (package root)"]),
        f"imports between parts ({sum(counts.values())} of {len(edges)} imports inside "
        "rnnkit; importing part -> imported part: how many imports):",
    ]

    def height(name: str) -> int:
        return rank.get(name, len(order) + 1)  # a part the Layout lacks: above everything

    width = max((len(a) for a, _ in counts), default=0)
    for (a, b), n in sorted(counts.items(), key=lambda item: tuple(map(height, item[0]))):
        upward = height(b) > height(a)
        lines.append(f"  {a:<{width}} -> {b} ({n}){'   <- UPWARD' if upward else ''}")
    return "\n".join(lines)


def test_imports_point_down_only():
    order = read_layout(README.read_text(encoding="utf-8"))
    edges = find_imports(PACKAGE)
    print()
    print(describe(order, edges))
    found = problems(order, edges, parts_on_disk(PACKAGE))
    assert not found, "imports must point down only (README, '## Layout'):\n" + "\n".join(found)


# ---------------------------------------------------------------- the check can fail


LAYOUT = """# pkg

## Layout

Imports point down only:

```
src/rnnkit/
  low.py        the bottom
  middle/       above it;
                a continuation line
  high.py       the top, with a long description
benchmarks/     outside the package
```

## After
"""


def write_package(root: Path, files: dict) -> Path:
    package = root / "src" / "rnnkit"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def check(tmp_path, files: dict, readme: str = LAYOUT) -> list[str]:
    package = write_package(tmp_path, {"__init__.py": "from . import high\n", **files})
    return problems(read_layout(readme), find_imports(package), parts_on_disk(package))


def test_the_layout_is_read_entry_by_entry():
    assert read_layout(LAYOUT) == ["low", "middle", "high"]
    assert read_layout(README.read_text(encoding="utf-8"))[0] == "_version"
    with pytest.raises(AssertionError, match="no '## Layout' section"):
        read_layout("# nothing\n")
    with pytest.raises(AssertionError, match=r"lists low\.py twice"):
        read_layout(LAYOUT.replace("  high.py", "  low.py"))


def test_downward_imports_pass(tmp_path):
    files = {
        "low.py": "import os\n",
        "middle/__init__.py": "from ..low import x\nfrom . import inner\n",
        "middle/inner.py": "import rnnkit.low\nfrom rnnkit import low\n",
        "high.py": "from .middle import inner\nfrom . import low\n",
        "__main__.py": "from .high import main\n",
    }
    assert check(tmp_path, files) == []


def test_an_upward_import_fails_even_inside_a_function(tmp_path):
    files = {
        "low.py": "def f():\n    from .middle.inner import y\n",
        "middle/__init__.py": "",
        "middle/inner.py": "import rnnkit.high\n",
        "high.py": "",
    }
    assert check(tmp_path, files) == [
        "rnnkit.low -> rnnkit.middle.inner (part low imports part middle, which is above "
        "it) at src/rnnkit/low.py:2",
        "rnnkit.middle.inner -> rnnkit.high (part middle imports part high, which is above "
        "it) at src/rnnkit/middle/inner.py:1",
    ]


def test_importing_the_package_root_fails(tmp_path):
    files = {
        "low.py": "",
        "middle/__init__.py": "from .. import __version__\n",
        "high.py": "import rnnkit\n",
    }
    assert check(tmp_path, files) == [
        "rnnkit.high -> rnnkit (part high imports the package root, the façade that nothing "
        "inside imports) at src/rnnkit/high.py:1",
        "rnnkit.middle -> rnnkit (part middle imports the package root, the façade that "
        "nothing inside imports) at src/rnnkit/middle/__init__.py:1",
    ]


def test_a_part_the_layout_does_not_list_fails(tmp_path):
    files = {"low.py": "from .extra import z\n", "middle/a.py": "", "high.py": "", "extra.py": ""}
    assert check(tmp_path, files) == [
        "src/rnnkit/extra is a part that the README's Layout does not list; give it its "
        "place in the order there",
        "rnnkit.low -> rnnkit.extra (part low imports part extra; extra is not in the "
        "README's Layout) at src/rnnkit/low.py:1",
    ]
    assert check(tmp_path / "gone", {"low.py": "", "high.py": ""}) == [
        "the README's Layout lists middle, which src/rnnkit does not have"
    ]
