"""The hand mutants of issue 18 (the 21 that survived the suite of the time, and the explicit-shard bug), each with
the test that must kill it. ``python mutation/hand_mutants.py [--only ID ...]`` applies each mutant to a copy of
``src/`` (never the working tree), runs its killing tests against that copy and prints one line per mutant;
exit status 1 when one survives. ``make mutants-hand`` runs it.

A mutant is ``(id, file under src/smoothscore, original text, mutated text, test node ids)``; the original text must
occur exactly once in the file (else the entry is stale and reported as such)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
T = "tests/"

MUTANTS: list[tuple[str, str, str, str, list[str]]] = [
    (
        "shard-centre",
        "data/arrays.py",
        "n_pass = self.n_total if whole is not None else self.n",
        "n_pass = self.n",
        [T + "test_shard_centre.py"],
    ),
    (
        "esf-dropped-count",
        "scores/empirical.py",
        "math.log((n - k) / n) if n > k",
        "math.log(k / n) if n > k",
        [T + "test_truncation_tight.py::test_esf_certificate_is_tight_uniform_and_weighted"],
    ),
    (
        "unconditional-log-count",
        "scores/unconditional.py",
        "log_t = (math.log(n - ix.shape[1]) if n > ix.shape[1] else -math.inf) + g_tau",
        "log_t = g_tau",
        [T + "test_truncation_tight.py::test_unconditional_certificate_is_tight"],
    ),
    (
        "esf-weighted-kept-pi",
        "scores/empirical.py",
        "torch.log((1 - torch.exp(logw[ix]).sum(1)).clamp_min(0) + 1e-15)",
        "torch.log(torch.exp(logw[ix]).sum(1).clamp_min(0) + 1e-15)",
        [T + "test_truncation_tight.py::test_esf_certificate_is_tight_uniform_and_weighted"],
    ),
    (
        "flat-margin",
        "search/lower_bound_index.py",
        "return 1e-5 * ((e * e).sum(1) + self.r2max)",
        "return 0.0 * ((e * e).sum(1) + self.r2max)",
        [T + "test_truncation_tight.py::test_flat_index_margin_covers_float32_ties"],
    ),
    (
        "kernel-gemm-half-sq-float32",
        "scores/_kernel.py",
        "points.half_sq_as(u.dtype), lw, want_mean",
        "points.half_sq_as(torch.float32).to(u.dtype), lw, want_mean",
        [T + "test_esf_float64_mixed.py"],
    ),
    (
        "kernel-flash-half-sq-float32",
        "scores/_kernel.py",
        "hs = points.half_sq_as(u.dtype)",
        "hs = points.half_sq_as(torch.float32).to(u.dtype)",
        [T + "test_esf_float64_mixed.py"],
    ),
    (
        "verdict-fail-ignores-upper-bound",
        "verdict.py",
        "fails = m_hi < 0 or (strict and m_hi <= 0)",
        "fails = True",
        [T + "test_verdict_bounds.py"],
    ),
    (
        "merge-ignores-config",
        "merge.py",
        'r["preset"] == preset and r["config"] == config and r["seed"] in seeds',
        'r["preset"] == preset and r["seed"] in seeds',
        [T + "test_report_merge_folders.py::test_stale_config_of_a_killed_rerun_is_not_merged"],
    ),
    (
        "merge-ignores-planned-seeds",
        "merge.py",
        'r["preset"] == preset and r["config"] == config and r["seed"] in seeds',
        'r["preset"] == preset and r["config"] == config',
        [T + "test_report_merge_folders.py::test_seed_outside_the_latest_plan_is_not_merged"],
    ),
    (
        "merge-earlier-folder-wins",
        "runner.py",
        "if src.resolve() != dst.resolve():",
        "if src.resolve() != dst.resolve() and not dst.exists():",
        [T + "test_report_merge_folders.py::test_the_later_folder_copy_of_a_job_wins"],
    ),
    (
        "memorization-fraction-flipped",
        "metrics/memorization.py",
        "(nn_ratio(samples, train) < threshold)",
        "(nn_ratio(samples, train) > threshold)",
        [T + "test_memorization_ratios.py"],
    ),
    (
        "memorization-audit-third-neighbour",
        "metrics/memorization.py",
        "r = _distinct_ratio(samples, index, d, i)\n    return {",
        "r = d[:, 0] / d[:, 2]\n    return {",
        [T + "test_memorization_ratios.py"],
    ),
    (
        "resnet-weights-only-dropped",
        "training/knn.py",
        'torch.load(path, map_location="cpu", weights_only=True)',
        'torch.load(path, map_location="cpu", weights_only=False)',
        [T + "test_safe_loading_runtime.py"],
    ),
    (
        "diffusers-wrong-half",
        "scores/diffusers.py",
        "return out[:, :c] if out.shape[1] == 2 * c else out",
        "return out[:, c:] if out.shape[1] == 2 * c else out",
        [T + "test_diffusers_conversion.py"],
    ),
    (
        "diffusers-continuous-formula",
        "scores/diffusers.py",
        "return 0.25 * sigma.log()",
        "return 0.5 * sigma.log()",
        [T + "test_diffusers_conversion.py"],
    ),
    (
        "diffusers-no-clamp",
        "noise.py",
        "ls = torch.as_tensor(sigma).to(torch.float64).log().clamp(float(tab[0]), float(tab[-1]))",
        "ls = torch.as_tensor(sigma).to(torch.float64).log()",
        [T + "test_diffusers_conversion.py", T + "test_vp_conversions.py"],
    ),
    (
        "diffusers-use-safetensors-dropped",
        "scores/diffusers.py",
        "model_cls.from_pretrained(model_dir, use_safetensors=True, local_files_only=True)",
        "model_cls.from_pretrained(model_dir, local_files_only=True)",
        [T + "test_diffusers_conversion.py"],
    ),
    (
        "diffusers-from-pretrained-dtype",
        "scores/diffusers.py",
        "return cls(model, scheduler, dtype=dtype, device=device)",
        "return cls(model, scheduler, device=device)",
        [T + "test_diffusers_conversion.py"],
    ),
    (
        "unconditional-min-r2-not-reduced",
        "scores/unconditional.py",
        "return -sharding.all_reduce_max(-best, self._group)",
        "return best",
        [T + "test_sharded_reductions.py"],
    ),
    (
        "rank-output-dir-every-rank",
        "distributed.py",
        "    if is_main_process():\n        yield Path(out)",
        "    if True:\n        yield Path(out)",
        [T + "test_sharded_reductions.py"],
    ),
    (
        "unconditional-callable-t-validity",
        "scores/unconditional.py",
        "valid = r2min <= tau if callable_t else None",
        "valid = None",
        [T + "test_truncation_tight.py::test_callable_temperature_not_served_when_the_nearest_row_may_be_dropped"],
    ),
    (
        "truncation-certificate-zero",
        "scores/truncation.py",
        "lse[act[ok]], val[act[ok]], cert[act[ok]] = log_s[ok], value[ok], b[ok]",
        "lse[act[ok]], val[act[ok]], cert[act[ok]] = log_s[ok], value[ok], 0.0 * b[ok]",
        [T + "test_truncation_tight.py"],
    ),
    # survivors of the sampled cosmic-ray run (docs/mutation.md), killed since
    (
        "cr-kernel-grad-and",
        "scores/_kernel.py",
        "grad = not is_plain(u) or not is_plain(inv)",
        "grad = not is_plain(u) and not is_plain(inv)",
        [T + "test_core_mutants.py::test_gemm_kernel_gradient_in_sigma_over_several_chunks"],
    ),
    (
        "cr-knn-diameter-div",
        "scores/knn_score.py",
        "(self._flat - self._flat.mean(0)).norm(dim=1).max()",
        "(self._flat / self._flat.mean(0)).norm(dim=1).max()",
        [T + "test_core_mutants.py::test_knn_score_diameter_bound_is_twice_the_radius_about_the_mean"],
    ),
    (
        "cr-closest-pairs-not",
        "metrics/expansiveness.py",
        "        if len(i0) == n:\n            break",
        "        if not len(i0) == n:\n            break",
        [T + "test_core_mutants.py::test_closest_pairs_hand_values"],
    ),
    (
        "cr-sigma-star-noise-bound",
        "sampling/sigma_star.py",
        "if not (alpha > 0) or noise < 0:",
        "if not (alpha > 0) or noise < -1:",
        [T + "test_core_mutants.py::test_sigma_star_sampler_refuses_negative_noise"],
    ),
]
# the survivors of the stratified sample and of the full per-module runs, killed since (data:
# mutation/sampled_survivors.toml, mutation/full_survivors.toml)
MUTANTS += [
    (m["id"], m["file"], m["old"], m["new"], [T + t for t in m["tests"]])
    for name in ("sampled_survivors.toml", "full_survivors.toml")
    for m in tomllib.loads((ROOT / "mutation" / name).read_text())["mutant"]
]


def _apply(tree: Path, rel: str, old: str, new: str) -> str | None:
    p = tree / "src" / "smoothscore" / rel
    text = p.read_text()
    if text.count(old) != 1:
        return f"stale: the original text occurs {text.count(old)} times in {rel}"
    p.write_text(text.replace(old, new))
    return None


def run_one(mutant, timeout: int = 600) -> tuple[str, str, str]:
    mid, rel, old, new, tests = mutant
    with tempfile.TemporaryDirectory(prefix=f"hand-mutant-{mid}-") as tmp:
        tree = Path(tmp)
        shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        bad = _apply(tree, rel, old, new)
        if bad:
            return mid, "STALE", bad
        env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *tests]
        try:
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return mid, "KILLED", "timeout"
        last = (r.stdout.strip().splitlines() or [""])[-1]
        if r.returncode == 1:
            return mid, "KILLED", last
        if r.returncode == 0:
            return mid, "SURVIVED", last
        return mid, "ERROR", f"pytest exit {r.returncode}: {last}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="mutant ids to run (default: all)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    todo = [m for m in MUTANTS if not args.only or m[0] in args.only]
    with ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(run_one, todo))
    for (mid, status, detail), m in zip(results, todo):
        print(f"{status:8s} {mid:28s} {m[1]:32s} {detail}")
    return 0 if all(s == "KILLED" for _, s, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
