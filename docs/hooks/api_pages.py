"""mkdocs hook: generated page content.

* ``<!-- api-exports -->`` becomes the table of the lazily exported top-level names (``smoothscore._LAZY``).
* ``<!-- api: smoothscore.PACKAGE -->`` becomes one mkdocstrings block per public module of the package, listed
  from the source tree at build time: a module added later appears in the API reference without editing the page
  (and a module whose docstrings break strict mode fails the build).
* ``<!-- tutorial: tutorials/NAME.py -->`` becomes the tutorial script (jupytext percent format): its markdown
  cells as text, its code cells as Python blocks. The figures the markdown cells show are the ones the executed
  script wrote into ``docs/tutorials/figures`` (``make tutorials``; checked by ``tests/test_tutorials_slow.py``).
"""

from __future__ import annotations

import ast
import pkgutil
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
API = re.compile(r"^<!-- api: ([\w.]+) -->$", re.MULTILINE)
EXPORTS = "<!-- api-exports -->"
TUTORIAL = re.compile(r"^<!-- tutorial: ([\w./-]+\.py) -->$", re.MULTILINE)
CELL = re.compile(r"^# %%(.*)$")


def public_modules(package: str) -> list[str]:
    """Dotted names of the package's public modules (files and subpackages not starting with ``_``), sorted."""
    folder = SRC.joinpath(*package.split("."))
    mods = sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name)
    return [f"{package}.{m.name}" for m in mods if not m.name.startswith("_")]


def lazy_exports() -> dict[str, str]:
    """``{name: module}`` of the top-level names ``smoothscore/__init__.py`` resolves lazily (its ``_LAZY`` dict)."""
    tree = ast.parse((SRC / "smoothscore" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("smoothscore/__init__.py has no _LAZY table")


def exports_table() -> str:
    """Markdown table: each ``ss.NAME`` with a cross-reference to where it is defined (a rename breaks the build)."""
    rows = [f"| `ss.{name}` | [{mod}.{name}][] |" for name, mod in sorted(lazy_exports().items())]
    return "\n".join(["| name | defined in |", "|---|---|", *rows])


def percent_to_markdown(source: str) -> str:
    """A jupytext percent-format script as Markdown: ``# %% [markdown]`` cells uncommented, code cells fenced."""
    cells: list[tuple[bool, list[str]]] = []
    for line in source.splitlines():
        m = CELL.match(line)
        if m:
            cells.append(("[markdown]" in m.group(1), []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for is_md, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        if is_md:
            out.append("\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines))
        elif lines:
            out.append("```python\n" + "\n".join(lines) + "\n```")
    return "\n\n".join(out) + "\n"


def tutorial_page(script: str) -> str:
    """The tutorial's Markdown followed by the output of its last execution (``docs/tutorials/figures/NAME.txt``)."""
    path = ROOT / script
    text = percent_to_markdown(path.read_text(encoding="utf-8"))
    output = ROOT / "docs" / "tutorials" / "figures" / f"{path.stem}.txt"
    if output.exists():
        text += (
            "\n## Output of the last execution\n\n```text\n" + output.read_text(encoding="utf-8").rstrip() + "\n```\n"
        )
    return text


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = markdown.replace(EXPORTS, exports_table())
    markdown = API.sub(lambda m: "\n\n".join(f"::: {name}" for name in public_modules(m.group(1))), markdown)
    return TUTORIAL.sub(lambda m: tutorial_page(m.group(1)), markdown)
