import json
import os

import pytest

from smoothscore.errors import UnknownNameError
from smoothscore.io import atomic_write, atomic_write_json
from smoothscore.registry import Registry


def test_registry_register_get_and_unknown():
    r = Registry("widget")

    @r.register("a", color="red")
    def a():
        return 1

    assert r.get("a") is a and r.meta("a") == {"color": "red"} and "a" in r and r.names() == ["a"]
    with pytest.raises(UnknownNameError, match="unknown widget 'b'; known: a"):
        r.get("b")
    with pytest.raises(ValueError):
        r.register("a", lambda: 2)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "out.json"
    atomic_write_json(p, {"x": 1})
    with pytest.raises(RuntimeError):

        def bad(tmp):
            open(tmp, "w").write("partial")
            raise RuntimeError("boom")

        atomic_write(p, bad)
    assert json.loads(p.read_text()) == {"x": 1}
    assert [f for f in os.listdir(tmp_path) if f != "out.json"] == []
