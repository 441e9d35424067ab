"""Paper A (Chen 2025): smoothed empirical scores and trained networks interpolate along the training points' subspace.

Shared pieces: :mod:`.protocol` (the score-network settings, draws of ``p_t0``, probability-flow denoising, line
geometry).
"""
