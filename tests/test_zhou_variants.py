"""The rows zhou-small-data can show beside Paper B's four methods: the sigma-free unconditioned network and each
temperature-target variant (the authors' ``"scheduled"``, Eq. 10's ``"sigma_star"``), and the paper preset that
shows them."""

from __future__ import annotations

import json

import pytest
import torch
from test_zhou_experiments_b import TINY

from smoothscore.errors import ConfigError
from smoothscore.experiments.zhou.methods import ALL_METHODS, VARIANTS, build_loss, net_spec, resolve_method
from smoothscore.experiments.zhou.presets import SMALL_DATA_QUICK, paper_preset
from smoothscore.nets import UNCONDITIONED_PAPER_PARAM, build_model
from smoothscore.runner import run_experiment


def test_variant_rows_resolve_to_their_method_and_overrides():
    c = dict(SMALL_DATA_QUICK, knn_variant="scheduled")
    assert resolve_method("temperature_pixel_sigma_star", c)[1]["knn_variant"] == "sigma_star"
    assert resolve_method("temperature_feature_scheduled", SMALL_DATA_QUICK)[1]["knn_variant"] == "scheduled"
    base, c2 = resolve_method("unconditioned_sigma_free", c)
    assert base == "unconditioned" and c2["uncond_param"] == "score" and "uncond_param" not in c
    assert resolve_method("conditioned", c) == ("conditioned", c)
    with pytest.raises(ConfigError, match="unconditioned_sigma_free"):
        resolve_method("temperature_pixel_other", c)
    assert set(VARIANTS) <= set(ALL_METHODS)


def test_variant_losses_and_networks():
    train = torch.randn(12, 1, 8, 8)
    c = dict(SMALL_DATA_QUICK, k=3, knn_variant="scheduled")
    assert build_loss("temperature_pixel", train, c).variant == "scheduled"
    assert build_loss("temperature_pixel_sigma_star", train, c).variant == "sigma_star"
    free = net_spec("unconditioned_sigma_free", c)
    paper = net_spec("unconditioned", c)
    assert free["conditioning"] == paper["conditioning"] == "none"
    assert free["param"] == "score"
    kw = {k: v for k, v in paper.items() if k not in ("model", "conditioning", "param")}
    net = build_model(paper["model"], (1, 8, 8), conditioning="none", param=paper["param"], **kw)
    assert net.param == UNCONDITIONED_PAPER_PARAM  # the default unconditioned row is the authors' F(x) / sigma


def test_paper_preset_shows_both_temperature_targets_and_the_sigma_free_row():
    for ds in ("cifar10", "celeba64"):
        p = paper_preset(ds)
        assert p["knn_variant"] == "scheduled"  # the authors' target for the paper's temperature rows
        assert {
            "temperature_pixel",
            "temperature_pixel_sigma_star",
            "unconditioned",
            "unconditioned_sigma_free",
        } <= set(p["methods"])


def test_small_data_runs_the_variant_rows(tmp_path):
    over = dict(TINY, methods=["unconditioned", "unconditioned_sigma_free", "temperature_pixel_sigma_star"])
    run_experiment("zhou-small-data", "quick", tmp_path, progress=False, overrides=over)
    m = json.loads((tmp_path / "zhou-small-data" / "results.json").read_text())["metrics"]
    for meth in over["methods"]:
        assert f"{meth}.memorized_fraction" in m and f"{meth}.train_seconds" in m
