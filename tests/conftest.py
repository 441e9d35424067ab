import os

import pytest
import torch

# keep the suite deterministic and light on a 2-core machine
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1))))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def gen():
    g = torch.Generator().manual_seed(1234)
    return g
