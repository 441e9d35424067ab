"""Run every ``bench_*.py`` script in this folder in turn (each prints its own markdown table)."""

import pathlib
import runpy
import sys

here = pathlib.Path(__file__).parent
sys.path.insert(0, str(here))
for script in sorted(here.glob("bench_*.py")):
    print(f"\n# {script.name}", flush=True)
    runpy.run_path(str(script), run_name="__main__")
