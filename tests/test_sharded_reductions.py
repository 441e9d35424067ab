"""Reductions over ranks that a single process cannot see (issue 18), under torchrun with 2 gloo ranks: the
unconditional field's nearest-point distance (``sigma_star`` and a callable temperature of it) is the minimum over
*all* ranks' rows — queries sit at rows of both halves — and ``rank_output_dir`` gives rank 0 the output folder and
every other rank its own scratch folder, removed on exit."""

import textwrap

import torch
from _torchrun import torchrun

import smoothscore as ss

SCRIPT = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    import smoothscore as ss
    from pathlib import Path
    from smoothscore.distributed import rank_output_dir
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(4)
    y = torch.randn(200, 5, generator=g, dtype=torch.float64)
    x = torch.cat([y[:6], y[-6:]]) + 0.01 * torch.randn(12, 5, generator=g, dtype=torch.float64)
    kw = dict(sigma_min=0.01, sigma_max=3.0, dtype="float64", device="cpu")
    unc = ss.UnconditionalEmpiricalScore(y, temperature=lambda s: 1.0 + 2.0 * s, **kw)
    assert unc.points.n == 100
    out = {"sstar": unc.sigma_star(x), "score": unc.score(x)}
    base = Path(sys.argv[2])
    with rank_output_dir(base) as d:
        (Path(d) / f"rank{rank}.txt").write_text("x")
        out["dir_is_out"] = Path(d) == base
        out["dir"] = str(d)
    out["dir_gone"] = not Path(out["dir"]).exists()
    torch.save(out, Path(sys.argv[1]) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()
""")


def test_nearest_distance_reduced_and_rank_folders(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    (tmp_path / "out").mkdir()
    torchrun([script, tmp_path, tmp_path / "out"], timeout=300)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    g = torch.Generator().manual_seed(4)
    y = torch.randn(200, 5, generator=g, dtype=torch.float64)
    x = torch.cat([y[:6], y[-6:]]) + 0.01 * torch.randn(12, 5, generator=g, dtype=torch.float64)
    sstar = torch.cdist(x, y).min(1).values / 5**0.5  # |x - nearest| / sqrt(d), float64 brute force
    kw = dict(sigma_min=0.01, sigma_max=3.0, dtype="float64", device="cpu")
    ref = ss.UnconditionalEmpiricalScore(y, temperature=lambda s: 1.0 + 2.0 * s, **kw).score(x)
    for r in (r0, r1):
        torch.testing.assert_close(r["sstar"], sstar, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(r["score"], ref, rtol=1e-9, atol=1e-9)
    assert r0["dir_is_out"] and not r1["dir_is_out"] and r1["dir_gone"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rank0.txt"]
