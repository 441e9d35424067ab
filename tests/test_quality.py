"""Sample-quality metrics (metrics/quality.py): Frechet distance, k-NN precision/recall on synthetic features with
known answers, and the project's feature classifier on digits."""

import math

import pytest
import torch

from smoothscore.data import load_digits
from smoothscore.errors import ConfigError
from smoothscore.metrics import frechet_distance, knn_precision_recall
from smoothscore.metrics.quality import FeatureClassifier, QualityScorer, train_feature_classifier


def test_frechet_identical_sets_is_zero():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 6, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_shifted_scaled_gaussians_closed_form():
    # N(0, I) vs N(m, s^2 I) in d dims: FD = |m|^2 + d (1 - s)^2; sampling error ~ O(d / sqrt(n))
    g = torch.Generator().manual_seed(1)
    d, n, s = 4, 40000, 1.5
    m = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = m + s * torch.randn(n, d, generator=g, dtype=torch.float64)
    exact = float(m.pow(2).sum()) + d * (1 - s) ** 2
    assert frechet_distance(a, b) == pytest.approx(exact, rel=0.03)


def test_precision_recall_known_answers():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(300, 3, generator=g)
    assert knn_precision_recall(real, real, k=3) == {"precision": 1.0, "recall": 1.0}
    far = real + 100.0
    assert knn_precision_recall(real, far, k=3) == {"precision": 0.0, "recall": 0.0}
    # fakes collapsed onto one real point: all precise, recall tiny
    one = real[:1].repeat(50, 1) + 1e-6 * torch.randn(50, 3, generator=g)
    pr = knn_precision_recall(real, one, k=3)
    assert pr["precision"] == 1.0 and pr["recall"] < 0.05


def test_classifier_rejects_non_images():
    with pytest.raises(ConfigError):
        train_feature_classifier(torch.zeros(10, 5), steps=1)


def test_feature_classifier_shapes_and_autoencoder_fallback(tmp_path):
    x = load_digits(n=40, size=8).x
    m = train_feature_classifier(x, steps=2, batch_size=8, cache_dir=tmp_path)  # no labels -> denoising autoencoder
    assert isinstance(m, FeatureClassifier) and m.autoencoder
    f = m.features(x)
    assert f.shape == (40, 32) and torch.isfinite(f).all()


@pytest.mark.slow
def test_classifier_accuracy_cache_and_scores(tmp_path):
    data = load_digits(size=16, classes=[0, 1, 3, 8], seed=0)
    train, test = data.subset(range(0, 500)), data.subset(range(500, len(data)))
    q = QualityScorer.fit(train, test.x, steps=200, seed=0, cache_dir=tmp_path)
    acc = q.accuracy(test.x, test.labels, torch.unique(train.labels))
    assert acc > 0.9
    assert len(list(tmp_path.glob("feature-classifier-*.safetensors"))) == 1
    q2 = QualityScorer.fit(train, test.x, steps=200, seed=0, cache_dir=tmp_path)  # loaded from the cache
    assert torch.allclose(q2.train_feats, q.train_feats)
    own = q(train.x[:200])
    noise = q(torch.rand(200, 1, 16, 16) * 2 - 1)
    # the training images themselves are close to train; uniform noise is far and not precise
    assert own["fd_train"] < 0.2 * noise["fd_train"]
    assert own["precision"] > 0.9 and noise["precision"] < 0.2
    assert own["confidence"] > 0.9 and math.isfinite(own["fd_ratio"])
    assert own["fd_ratio"] > 1.0  # samples that are training images are nearer train than test
