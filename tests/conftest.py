import os

import pytest
import torch

# one thread per test process: `make test` runs 2 xdist workers on a 2-core machine, and small-tensor loops are
# far slower with intra-op threads competing for the cores (measured 20-30x on a loaded machine)
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def gen():
    g = torch.Generator().manual_seed(1234)
    return g
