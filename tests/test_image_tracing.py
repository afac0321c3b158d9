"""finetune -> generate -> trace-images through the CLI, on a local pipeline folder (offline)."""

import json

import numpy as np
import yaml
from datasets import Dataset, Features, Image, Value
from PIL import Image as PILImage
from typer.testing import CliRunner

from hf_attrib.cli import app
from hf_attrib.tiny.diffusion import tiny_stable_diffusion


def digit(index: int) -> PILImage.Image:
    from sklearn.datasets import load_digits

    image = (load_digits().images[index] / 16 * 255).astype(np.uint8)
    return PILImage.fromarray(image).resize((32, 32), PILImage.BICUBIC)


def test_customize_generate_and_trace_from_local_folders(tmp_path):
    from sklearn.datasets import load_digits

    targets = load_digits().target
    captions = [f"a handwritten digit {n}" for n in range(10)] + ["a photo of digit"]
    tiny_stable_diffusion(captions).save_pretrained(tmp_path / "base", safe_serialization=True)
    digit(1500).convert("RGB").save(tmp_path / "exemplar.png")
    rows = [{"id": f"d{i}", "image": digit(i), "caption": f"a handwritten digit {targets[i]}"} for i in range(20)]
    rows.append({"id": "exemplar", "image": digit(1500), "caption": "a photo of <v1> digit"})
    features = Features({"id": Value("string"), "image": Image(), "caption": Value("string")})
    Dataset.from_list(rows, features=features).save_to_disk(str(tmp_path / "candidates"))
    runner = CliRunner()

    tuned = runner.invoke(app, ["finetune", str(tmp_path / "base"), str(tmp_path / "exemplar.png"), "--prompt",
                                "a photo of <v1> digit", "--output-dir", str(tmp_path / "tuned"), "--train", "unet",
                                "--train-embedding", "--epochs", "10", "--no-progress"])
    assert tuned.exit_code == 0, tuned.output
    assert (tmp_path / "tuned" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    made = runner.invoke(app, ["generate", str(tmp_path / "tuned"), "a photo of <v1> digit", "--output-dir",
                               str(tmp_path / "generated"), "--steps", "20"])
    assert made.exit_code == 0, made.output
    generated = Dataset.load_from_disk(str(tmp_path / "generated"))
    assert generated[0]["prompt"] == "a photo of <v1> digit" and generated[0]["steps"] == 20

    recipe = {
        "pipeline": str(tmp_path / "tuned"), "queries": str(tmp_path / "generated"),
        "candidates": str(tmp_path / "candidates"), "adapter": {"timesteps": 10},
        "methods": [{"name": "forward-inf", "optimizer": "adam", "learning_rate": 1e-3, "steps": 3,
                     "score": "relative"}, {"name": "nearest"}],
        "relevant": {"generated-0000": ["exemplar"]}, "top_k": 5, "output_dir": str(tmp_path / "run"),
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    traced = runner.invoke(app, ["trace-images", str(tmp_path / "recipe.yaml"), "--no-progress"])
    assert traced.exit_code == 0, traced.output
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    forward_inf = summary["results"][0]
    assert 0 < forward_inf["mrr"] <= 1 and forward_inf["evaluated"] == 1
    # the command computed what the Python API computes on the same folders
    from hf_attrib import AttributionResult, ForwardINF
    from hf_attrib.adapters import StableDiffusionAdapter
    from hf_attrib.image_tracing import load_rows

    adapter = StableDiffusionAdapter.from_pretrained(str(tmp_path / "tuned"), timesteps=10)
    expected = ForwardINF(adapter, optimizer="adam", learning_rate=1e-3, steps=3, score="relative",
                          progress=False).attribute(load_rows(str(tmp_path / "generated"), "queries"),
                                                    load_rows(str(tmp_path / "candidates"), "candidates"))
    saved = AttributionResult.load(tmp_path / "run" / "forward-inf")
    np.testing.assert_allclose(saved.scores, expected.scores, rtol=1e-6)
    assert forward_inf["top1"] == [expected.topk(1)[0][0][0]]
    grid = tmp_path / "run" / "grids" / "forward-inf" / "generated-0000.png"
    assert grid.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "run" / "nearest" / "scores.safetensors").is_file()


def test_trace_images_errors_are_clear(tmp_path):
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({"queries": "q", "candidates": "c"}))
    result = CliRunner().invoke(app, ["trace-images", str(tmp_path / "recipe.yaml")])
    assert result.exit_code == 2 and "names no pipeline" in result.output
