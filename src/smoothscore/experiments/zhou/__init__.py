"""Paper B (Zhou et al. 2026): noise unconditioning (Eq. 9), temperature smoothing (Eqs. 10-11) and the adaptive
sigma* sampler, on digits and small image sets; and the exact-ESF memorization baseline (Sec. 3.1, Eq. 2).

Shared pieces: :mod:`.data` (training / test splits), :mod:`.methods` (the four training methods: losses, networks,
training), :mod:`.sampling` (initial noise, samplers with a distance trace, sample summaries), :mod:`.presets`.
"""

#: Registration defaults of the Paper B experiments.
POLICY = {"groups": ("zhou",)}
