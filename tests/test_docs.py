"""The documentation's generated parts (fast): the mkdocs hook, the equations page's references, the tutorials'
committed figures. `make docs` builds the site itself (strict) in CI."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


hook = _load(ROOT / "docs" / "hooks" / "api_pages.py", "api_pages_hook")
runner = _load(ROOT / "tutorials" / "run_all.py", "tutorials_run_all")


def test_percent_script_to_markdown():
    src = "# %% [markdown]\n# # Title\n#\n# text `x`\n\n# %%\nimport os\nx = 1\n\n\n# %% [markdown]\n# ![f](a.png)\n"
    want = "# Title\n\ntext `x`\n\n```python\nimport os\nx = 1\n```\n\n![f](a.png)\n"
    assert hook.percent_to_markdown(src) == want


def test_api_pages_list_every_public_module():
    mods = hook.public_modules("smoothscore.scores")
    assert "smoothscore.scores.diffusers" in mods and "smoothscore.scores.empirical" in mods
    assert not any(m.rsplit(".", 1)[1].startswith("_") for m in mods)
    text = hook.on_page_markdown("# x\n\n<!-- api: smoothscore.sampling -->\n", None, None, None)
    assert "::: smoothscore.sampling.ode" in text and "<!--" not in text


def test_exports_table_matches_the_package():
    import smoothscore

    exports = hook.lazy_exports()
    assert exports == smoothscore._LAZY
    table = hook.exports_table()
    for name, mod in exports.items():
        assert f"| `ss.{name}` | [{mod}.{name}][] |" in table
        assert getattr(smoothscore, name) is getattr(importlib.import_module(mod), name)


def _resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_equations_page_references_exist():
    """Every cross-reference of docs/equations.md names an importable object (the strict build checks the same)."""
    text = (ROOT / "docs" / "equations.md").read_text()
    refs = set(re.findall(r"\]\[(smoothscore\.[\w.]+)\]", text))
    assert len(refs) > 50
    for ref in sorted(refs):
        assert _resolve(ref) is not None, ref


@pytest.mark.parametrize("name", runner.TUTORIALS)
def test_tutorial_pages_and_committed_figures(name):
    """Each tutorial has a page that embeds it, and every figure it shows was committed from an execution."""
    pages = [p for p in (ROOT / "docs" / "tutorials").glob("*.md") if f"tutorials/{name}.py" in p.read_text()]
    assert len(pages) == 1
    figures = re.findall(r"\]\((figures/[\w.-]+\.png)\)", (ROOT / "tutorials" / f"{name}.py").read_text())
    assert figures
    for fig in figures:
        path = ROOT / "docs" / "tutorials" / fig
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fig
    assert (ROOT / "docs" / "tutorials" / "figures" / f"{name}.txt").exists()
