"""Paper A (Chen 2025): smoothed empirical scores and trained networks interpolate along the training points' subspace.

Shared pieces: :mod:`.protocol` (the score-network settings, draws of ``p_t0``, probability-flow denoising, line
geometry).
"""

#: Registration defaults of the Paper A experiments: both groups, one intra-op thread (small tensors).
POLICY = {"groups": ("chen", "paper-a"), "threads": 1}
