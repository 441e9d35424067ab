"""Runtime safe loading through library code (issue 18): the library's one ``torch.load`` (the local ResNet-18
weights of the KNN feature encoder) is offered a live malicious pickle and refuses it before it runs; a diffusers
folder holding only pickled ``.bin`` weights is refused (safetensors only)."""

import pickle
import sys
import types

import pytest
import torch

from smoothscore.training import knn


class Evil:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_resnet_loader_refuses_a_pickle_payload(tmp_path, monkeypatch):
    target = tmp_path / "PWNED"
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save({"x": Evil(target)}, hub / "checkpoints" / knn.RESNET18_FILE)
    probe = tmp_path / "probe"  # the payload is live: unpickling it creates its file
    pickle.loads(pickle.dumps(Evil(probe))).close()
    assert probe.exists()
    fake = types.ModuleType("torchvision")  # no torchvision needed: the loader only calls models.resnet18()
    fake.models = types.SimpleNamespace(resnet18=lambda: torch.nn.Linear(2, 2))
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    with pytest.raises(pickle.UnpicklingError):
        knn._resnet18_encoder()
    assert not target.exists()
