"""Training pipeline end to end on a few small images: data, fit, export, codec."""

import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")  # before neuralzip.training.train, which imports torch

from neuralzip.core.ls import fit_ls  # noqa: E402
from neuralzip.core.codec import Codec  # noqa: E402
from neuralzip.core.intmodel import IntegerModel  # noqa: E402
from neuralzip.core.kernel import image_kernel  # noqa: E402
from neuralzip.core.units import n_features  # noqa: E402
from neuralzip.training.train import Settings, split, train_main  # noqa: E402
from neuralzip import zoo  # noqa: E402
from neuralzip.zoo import ZooModel  # noqa: E402

import reference  # noqa: E402


def _integer_bpsp(model: IntegerModel, images: list[np.ndarray]) -> float:
    """Ideal bits per subpixel of the exported integer model (per-image LS, as in training)."""
    bits = subpixels = 0
    for image in images:
        kernel = image_kernel(np.array(image, order="C"), fit_ls(image), 3, model, threads=1)
        kernel.compute_residuals()
        rows = image.size * 2
        symbols, tables = np.empty(rows, np.int32), np.empty((rows, 16))
        bits += kernel.encode_steps(0, kernel.num_steps(), symbols, tables)[1]
        subpixels += image.size
    return bits / subpixels


def test_split_is_deterministic_and_disjoint():
    names = [f"img_{i:03d}.png" for i in range(240)]
    train, val = split(names)
    assert split(names) == (train, val)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 240 and 5 < len(val) < 40


@pytest.mark.parametrize("context", [1, 2])
def test_training_lowers_nll_and_exports_an_exact_integer_model(tmp_path, sample, context):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(12):  # 12 crops of the sample photo; the hash split holds some out
        r, c = divmod(i, 4)
        Image.fromarray(sample[r * 50 : r * 50 + 48, c * 60 : c * 60 + 56]).save(folder / f"crop{i:02d}.png")
    out = tmp_path / "m.npz"
    settings = Settings(minutes=0.15, hidden=(16,), components=2, keep=1.0, threads=1, context=context,
                        command="neuralzip train imgs")
    report = train_main([str(folder)], out, settings, log=lambda *_: None)
    curve = report["curve"]
    assert curve[-1]["val_bpsp"] < curve[0]["val_bpsp"] - 0.05  # it learned something
    (stretch,) = report["stretches"]  # this run, as the manifest will record it
    assert stretch["command"] == "neuralzip train imgs" and stretch["device"] == "cpu"
    assert (stretch["from_step"], stretch["to_step"]) == (0, report["steps"])
    assert (stretch["val_before"], stretch["val_after"]) == (curve[0]["val_bpsp"], curve[-1]["val_bpsp"])
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == curve[-1]["step"]
    exported = IntegerModel.load(out)
    assert exported.context == context and report["architecture"]["features"] == n_features(context)
    val_images = [np.asarray(Image.open(name).convert("RGB")) for name in report["val_images"]]
    assert val_images
    # the float twin rounds as the integer model does: the export costs what training saw
    assert abs(_integer_bpsp(exported, val_images) - report["val_bpsp_float"]) < 0.01
    codec = Codec(ZooModel("photo", "00" * 32, exported))
    image = sample[:40, :40]
    data, stats = codec.encode(image)
    assert np.array_equal(codec.decode(data), image)
    assert abs(stats.nll_bpsp - stats.bpsp) < 0.5


@pytest.mark.parametrize("tag", [e["sha256"][:8] for e in zoo.versions("photo") if e.get("arithmetic") != "int16"])
def test_a_shipped_integer_model_is_a_training_start_that_exports_back_to_itself(tag):
    """Training exports float64 arithmetic (int16 weights come from it: training/quantize.py)."""
    from neuralzip.training.float_model import MixtureMLP
    from neuralzip.training.train import export, float_state

    shipped = zoo.load("photo", bytes.fromhex(tag)).model
    model = MixtureMLP(n_features(shipped.context), (128, 128), shipped.mlp.components)
    model.load_state_dict(float_state(shipped))
    back = export(model, shipped.default_coefs, shipped.context)
    assert back.mlp.fracs == shipped.mlp.fracs and back.context == shipped.context
    for a, b in zip(back.mlp.weights + back.mlp.biases, shipped.mlp.weights + shipped.mlp.biases):
        assert np.array_equal(a, b)


def test_a_context_1_model_grown_into_context_2_computes_what_it_did():
    """Zero weights on the new inputs: the wider model starts as exactly the shipped one."""
    from neuralzip.training.float_model import MixtureMLP
    from neuralzip.training.train import export, float_state

    narrow = next(m for m in (zoo.load("photo", bytes.fromhex(e["sha256"][:8])).model for e in zoo.versions("photo"))
                  if m.context == 1)
    model = MixtureMLP(n_features(2), (128, 128), narrow.mlp.components)
    model.load_state_dict(float_state(narrow, context=2))
    grown = export(model, narrow.default_coefs, 2)
    features = np.random.default_rng(0).integers(-2000, 2000, (300, n_features(2)))
    assert np.array_equal(reference.mlp_outputs(grown.mlp, features),
                          reference.mlp_outputs(narrow.mlp, features[:, : n_features(1)]))
    with pytest.raises(ValueError, match="cannot start"):
        float_state(grown, context=1)


def test_a_widened_model_computes_what_it_did_and_every_new_weight_learns():
    """--init a 128-wide model with --hidden 192,160: new units start silent (zero weights out)."""
    from neuralzip.training.float_model import MixtureMLP
    from neuralzip.training.train import float_state, widen

    shipped = zoo.load("photo").model
    narrow = MixtureMLP(n_features(shipped.context), (128, 128), shipped.mlp.components)
    narrow.load_state_dict(float_state(shipped))
    wide = MixtureMLP(n_features(shipped.context), (192, 160), shipped.mlp.components)
    wide.load_state_dict(widen(narrow.state_dict(), (192, 160)))
    x = torch.from_numpy(np.random.default_rng(0).integers(-2000, 2000, (500, n_features(2)))).float() / 256
    assert torch.equal(wide(x), narrow(x))
    step = torch.optim.SGD(wide.parameters(), lr=1e-3)
    for _ in range(2):  # rounding is straight-through: gradients flow
        step.zero_grad()
        wide(x).float().pow(2).mean().backward()
        step.step()
    assert all(bool((p.grad[128:] != 0).any()) for p in (wide.hidden[0].weight, wide.hidden[1].weight))
    assert bool((wide.out.weight.grad[:, 128:] != 0).any())
    with pytest.raises(ValueError, match="cannot shrink"):
        widen(wide.state_dict(), (128, 128))


def test_a_narrowed_model_keeps_the_live_units_and_likeliest_components():
    """--init a 128-wide, 6-component model with --hidden 96,64 --components 4: units that
    never fire and components of no weight are the ones dropped, and then nothing changes."""
    from neuralzip.core.mixture import MIXTURE
    from neuralzip.training.float_model import MixtureMLP
    from neuralzip.training.train import float_state, narrow

    shipped = zoo.load("photo").model
    k = shipped.mlp.components
    state = float_state(shipped)
    for name, dead in (("hidden.0", slice(96, None)), ("hidden.1", slice(64, None))):
        state[f"{name}.weight"][dead] = 0.0  # these units never fire
        state[f"{name}.bias"][dead] = -1.0
    logit_rows = torch.arange(MIXTURE.logits.start, MIXTURE.logits.start + MIXTURE.logits.count)
    for dead_component in (1, 4):  # mixture weight e**-60 of the others'
        state["out.weight"][logit_rows * k + dead_component] = 0.0
        state["out.bias"][logit_rows * k + dead_component] = -60.0
    big = MixtureMLP(n_features(shipped.context), (128, 128), k)
    big.load_state_dict(state)
    x = torch.from_numpy(np.random.default_rng(0).integers(-2000, 2000, (500, n_features(2)))).float() / 256
    small = MixtureMLP(n_features(shipped.context), (96, 64), 4)
    small.load_state_dict(narrow(state, (96, 64), 4, x))
    assert torch.equal(small(x), big(x)[:, :, [0, 2, 3, 5]])
    same = MixtureMLP(n_features(shipped.context), (128, 128), k)
    same.load_state_dict(narrow(state, (128, 128), k, x))
    assert torch.equal(same(x), big(x))
    with pytest.raises(ValueError, match="cannot narrow"):
        narrow(state, (128, 128), k + 1, x)
