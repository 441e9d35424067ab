"""Named random streams (smoothscore.seeding, RunContext.seed_for / rng / generator): stable, distinct, declared."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from smoothscore.errors import ConfigError
from smoothscore.experiments.base import RunContext, load_all, stream_declared
from smoothscore.seeding import derive_seed, numpy_rng, stream_key, torch_generator

SRC = Path(__file__).resolve().parents[1] / "src" / "smoothscore" / "experiments"
#: members standing in for a declared ``family:*`` (methods, parameterisations, indices, method:size)
MEMBERS = (
    [str(j) for j in range(10)]
    + ["conditioned", "unconditioned", "temperature_pixel", "temperature_feature", "temperature"]
    + ["sigma_score", "edm", "score", "sigma_scaled", "mlp-conditioned", "mlp-unconditioned", "circle", "fig4"]
    + [f"{m}:{n}" for m in ("conditioned", "unconditioned", "temperature") for n in (2, 3, 4, 6, 8, 16)]
)


def _all_stream_names() -> set[str]:
    names = set()
    for _, spec in load_all().items():
        for s in spec.streams:
            names |= {f"{s[:-2]}:{m}" for m in MEMBERS} if s.endswith(":*") else {s}
    return names


def test_hand_formula_collision_is_gone():
    # the old ``seed + offset``: seed 10 with offset 100 was the same stream as seed 0 with offset 110
    assert 10 + 100 == 0 + 110
    assert derive_seed(10, "init:conditioned") != derive_seed(0, "init:unconditioned")
    assert derive_seed(10, "100") != derive_seed(0, "110")


def test_hundred_seeds_times_every_named_stream_are_distinct():
    names = _all_stream_names()
    assert {"noise", "p_t0", "init:conditioned", "batches:conditioned", "audit-noise"} <= names
    seeds = [derive_seed(s, n) for s in range(100) for n in sorted(names)]
    assert len(set(seeds)) == len(seeds) == 100 * len(names)
    assert all(0 <= v < 2**63 for v in seeds)


def test_same_seed_and_name_give_the_same_stream():
    assert derive_seed(3, "noise") == derive_seed(3, "noise")
    a = torch.randn(5, generator=torch_generator(3, "noise"))
    assert torch.equal(a, torch.randn(5, generator=torch_generator(3, "noise")))
    assert np.array_equal(numpy_rng(3, "noise").random(4), numpy_rng(3, "noise").random(4))
    assert not torch.equal(a, torch.randn(5, generator=torch_generator(3, "init")))


def test_stream_key_is_the_sha256_prefix_not_the_salted_hash():
    d = hashlib.sha256(b"noise").digest()
    assert stream_key("noise") == tuple(int.from_bytes(d[i : i + 4], "little") for i in range(0, 16, 4))
    ss = np.random.SeedSequence(entropy=7, spawn_key=stream_key("noise"))
    assert derive_seed(7, "noise") == int(ss.generate_state(1, np.uint64)[0]) & (2**63 - 1)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ConfigError, match="non-negative integer"):
        derive_seed(seed, "noise")


def test_bad_stream_name_is_refused():
    with pytest.raises(ConfigError, match="non-empty name"):
        derive_seed(0, "")


def test_context_streams_follow_the_run_seed_and_the_declaration(tmp_path):
    ctx = RunContext("x", "quick", tmp_path, {}, seed=4)
    assert ctx.seed_for("noise") == derive_seed(4, "noise")
    assert torch.equal(
        torch.randn(3, generator=ctx.generator("noise")), torch.randn(3, generator=torch_generator(4, "noise"))
    )
    assert ctx.streams_used == {"noise"}
    ctx.streams = ("noise", "init:*")
    ctx.seed_for("init:conditioned")
    with pytest.raises(ConfigError, match="not declared"):
        ctx.rng("batches:conditioned")
    with pytest.raises(ConfigError, match="named by a string"):
        ctx.generator(2)
    assert stream_declared("init:a:b", ("init:*",)) and not stream_declared("init", ("init:*",))


def test_every_literal_stream_in_the_experiments_is_declared_by_its_experiment():
    """Each ``ctx.generator / seed_for / rng / init_noise`` literal in a module is declared by that module."""
    reg = load_all()
    by_module = {}
    for _, spec in reg.items():
        if spec.fn.__module__.count(".") >= 3:  # an experiment of a paper package (tests register others)
            by_module.setdefault(spec.fn.__module__, set()).update(spec.streams)
    assert len(by_module) >= 15
    pat = re.compile(r"(?:generator|seed_for|rng)\(f?\"([^\"{]+)")
    for module, declared in by_module.items():
        text = (SRC / Path(*module.split(".")[2:])).with_suffix(".py").read_text()
        for name in pat.findall(text):
            assert stream_declared(name, declared) or name + "*" in declared, (module, name)


def test_no_hand_seed_formula_left_in_the_experiments():
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    assert not re.search(r"seed\)? \* \d|seed \+ (offset|\d)|1000003|7919", text)
    assert "torch.manual_seed(" not in text
