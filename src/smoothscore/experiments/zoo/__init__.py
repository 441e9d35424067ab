"""Beyond both papers: the denoiser zoo benchmark, what explains a trained network, and where memorization begins
per training method (built on Paper B's methods, :mod:`smoothscore.experiments.zhou.methods`).
"""

#: Registration defaults of the experiments beyond both papers: the zoo group, one intra-op thread (small tensors).
POLICY = {"groups": ("zoo",), "threads": 1}
