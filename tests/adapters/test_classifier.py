"""ClassifierAdapter: cross-entropy per example for a plain torch classifier and a transformers image
classifier, checked against independent computations; bad rows named; the model left unchanged."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from hf_attrib import ForwardINF
from hf_attrib.adapters import ClassifierAdapter
from hf_attrib.engine.scoring import EncodedRows, example_losses


def rows(n=6, shape=(1, 8, 8), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return [{"id": f"r{i}", "input": rng.normal(size=shape).astype(np.float32), "label": int(i % classes)}
            for i in range(n)]


def small_cnn(classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, classes)).eval()


def test_losses_are_each_rows_cross_entropy():
    model = small_cnn()
    adapter = ClassifierAdapter(model, num_classes=3)
    data = rows()
    losses = example_losses(adapter, model, EncodedRows.build(adapter, data, 4, "rows"))[:, 0, 0]
    for row, loss in zip(data, losses, strict=True):
        with torch.no_grad():
            logits = model(torch.as_tensor(row["input"])[None])[0]
        expected = (torch.logsumexp(logits, 0) - logits[row["label"]]).item()
        assert loss == pytest.approx(expected, rel=1e-5)


def test_transformers_image_classifier_with_its_image_processor():
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=32, num_labels=3)).eval()
    processor = ViTImageProcessor(size={"height": 8, "width": 8})
    rng = np.random.default_rng(0)
    data = [{"id": f"img{i}", "input": Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)),
             "label": i % 3} for i in range(5)]
    adapter = ClassifierAdapter(model, image_processor=processor)
    assert adapter.num_classes == 3  # from config.num_labels
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = ForwardINF(adapter, learning_rate=1e-2, steps=2, optimizer="adam", progress=False).attribute(
        data[:2], data)
    assert np.isfinite(result.scores).all() and result.scores.shape == (2, 5)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    pixels = processor(images=[r["input"] for r in data], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(pixel_values=pixels).logits, torch.tensor([0, 1, 2, 0, 1]),
                                               reduction="none")
    batch = adapter.collate(data)
    with torch.no_grad():
        torch.testing.assert_close(adapter.per_example_loss(model, batch), expected)


def test_bad_rows_are_named():
    adapter = ClassifierAdapter(small_cnn(), num_classes=3)
    good = rows(2)
    with pytest.raises(ValueError, match="row 'x' has no 'input' column"):
        adapter.collate([*good, {"id": "x", "label": 0}])
    with pytest.raises(ValueError, match="row 'y': column 'label' must be a class index"):
        adapter.collate([*good, {"id": "y", "input": good[0]["input"], "label": "cat"}])
    with pytest.raises(ValueError, match="row 'z': column 'label' is 7, outside the 3 classes"):
        adapter.collate([*good, {"id": "z", "input": good[0]["input"], "label": 7}])
    with pytest.raises(ValueError, match="differ in shape"):
        adapter.collate([*good, {"id": "w", "input": np.zeros((1, 4, 4), np.float32), "label": 0}])
    with pytest.raises(ValueError, match="'input' is not numeric"):
        adapter.collate([{"id": "v", "input": "pixels", "label": 0}])
    unchecked = ClassifierAdapter(small_cnn())  # no num_classes: the model's logits tell
    with pytest.raises(ValueError, match="holds class 5, but the model has 3 classes"):
        unchecked.per_example_loss(unchecked.model, unchecked.collate([{**good[0], "label": 5}]))
