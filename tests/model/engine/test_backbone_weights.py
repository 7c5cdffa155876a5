"""ImageNet weights from the user's file: MSRA/Caffe2 blobs, detectron2 and torchvision files.

Each test writes a file with the format's real names and shapes (random values) and checks that
the trunk, fed through the model's own preprocessing, gives on an image exactly what a reference
computed here independently gives: for MSRA blobs a hand-written ResNet-50 forward with
``torch.nn.functional`` (BGR input, stride on the 1x1 conv, BN as scale/sqrt(1+eps) and bias, as
detectron2 loads these files), for torchvision files torchvision's own ResNet-50 on its normalised
RGB input.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from pointly.cli.main import main
from pointly.model.engine.backbone_weights import apply_conventions, load_backbone_weights, weights_conventions
from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.config import coco_r50_1x, load_config
from pointly.model.engine.train import check_backbone_start
from pointly.pointgen.base.errors import PointlyError

BLOCKS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
EPS = 1e-5


def msra_blobs(depth: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    """Caffe2 ImageNet blobs of a ResNet (the names of Detectron's R-50.pkl), random values."""
    rng = np.random.default_rng(seed)

    def conv(out_c, in_c, k):
        return (rng.standard_normal((out_c, in_c, k, k)) * np.sqrt(1.0 / (in_c * k * k))).astype(np.float32)

    def bn(prefix, c):
        return {
            f"{prefix}_bn_s": rng.uniform(0.5, 1.0, c).astype(np.float32),
            f"{prefix}_bn_b": (rng.standard_normal(c) * 0.1).astype(np.float32),
        }

    blobs = {"conv1_w": conv(64, 3, 7), **bn("res_conv1", 64)}
    in_c = 64
    for stage, n in zip(range(2, 6), BLOCKS[depth]):
        width = 64 * 2 ** (stage - 2)
        for i in range(n):
            p = f"res{stage}_{i}"
            blobs |= {
                f"{p}_branch2a_w": conv(width, in_c, 1),
                **bn(f"{p}_branch2a", width),
                f"{p}_branch2b_w": conv(width, width, 3),
                **bn(f"{p}_branch2b", width),
                f"{p}_branch2c_w": conv(4 * width, width, 1),
                **bn(f"{p}_branch2c", 4 * width),
            }
            if i == 0:
                blobs |= {f"{p}_branch1_w": conv(4 * width, in_c, 1), **bn(f"{p}_branch1", 4 * width)}
            in_c = 4 * width
    blobs["fc1000_w"] = rng.standard_normal((1000, 2048)).astype(np.float32)
    blobs["fc1000_b"] = np.zeros(1000, np.float32)
    blobs["conv1_w_momentum"] = np.zeros((64, 3, 7, 7), np.float32)  # training state in some files
    return blobs


def msra_reference(blobs: dict[str, np.ndarray], bgr: torch.Tensor, depth: int = 50) -> list[torch.Tensor]:
    """C2..C5 of the Caffe2 ResNet on a mean-subtracted BGR batch, written from the blob names."""
    t = {k: torch.from_numpy(v).double() for k, v in blobs.items()}

    def affine(x, prefix):
        s = t[f"{prefix}_bn_s"] / np.sqrt(1.0 + EPS)
        return x * s.view(1, -1, 1, 1) + t[f"{prefix}_bn_b"].view(1, -1, 1, 1)

    x = F.relu(affine(F.conv2d(bgr.double(), t["conv1_w"], stride=2, padding=3), "res_conv1"))
    x = F.max_pool2d(x, 3, 2, 1)
    outs = []
    for stage, n in zip(range(2, 6), BLOCKS[depth]):
        for i in range(n):
            p = f"res{stage}_{i}"
            stride = 2 if (i == 0 and stage > 2) else 1
            y = F.relu(affine(F.conv2d(x, t[f"{p}_branch2a_w"], stride=stride), f"{p}_branch2a"))
            y = F.relu(affine(F.conv2d(y, t[f"{p}_branch2b_w"], padding=1), f"{p}_branch2b"))
            y = affine(F.conv2d(y, t[f"{p}_branch2c_w"]), f"{p}_branch2c")
            short = affine(F.conv2d(x, t[f"{p}_branch1_w"], stride=stride), f"{p}_branch1") if i == 0 else x
            x = F.relu(y + short)
        outs.append(x)
    return outs


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """A 64x64 RGB image, 0-255 (no padding at size_divisibility 32)."""
    rng = np.random.default_rng(3)
    return torch.from_numpy(rng.integers(0, 256, (3, 64, 64)).astype(np.float32))


@pytest.fixture(scope="module")
def msra_file(tmp_path_factory):
    blobs = msra_blobs()
    path = tmp_path_factory.mktemp("w") / "R-50.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"blobs": blobs}, fh, protocol=2)  # as Detectron wrote them
    return path, blobs


def ours(cfg, image: torch.Tensor, path) -> tuple[list[torch.Tensor], object]:
    model = build_panoptic_fcn(cfg).eval()
    b, i = cfg.model.backbone, cfg.input
    report = load_backbone_weights(
        model.backbone.bottom_up,
        path,
        stride_in_1x1=b.stride_in_1x1,
        input_format=i.format,
        pixel_mean=i.pixel_mean,
        pixel_std=i.pixel_std,
    )
    with torch.no_grad():
        return model.backbone.bottom_up(model.preprocess([image])), report


def assert_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    for g, w in zip(got, want):
        scale = float(w.abs().max())
        torch.testing.assert_close(g.double(), w.double(), rtol=0, atol=2e-4 * scale)


def test_msra_blobs_give_the_caffe2_resnet(msra_file, image):
    path, blobs = msra_file
    cfg = coco_r50_1x()
    assert apply_conventions(cfg, path) == [f"model.backbone.weights={path}"]  # the preset is MSRA already
    got, report = ours(cfg, image, path)
    # the official input: BGR 0-255 minus the official (RGB-ordered) mean, std 1
    bgr = image.flip(0)[None] - torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    assert_close(got, msra_reference(blobs, bgr))
    assert sorted(report.left_over) == ["conv1_w_momentum", "fc1000_b", "fc1000_w"]
    assert len(report.used) == len(blobs) - 3  # every trunk blob, each once
    n_bn = sum(1 for k in blobs if k.endswith("_bn_s"))
    assert len(report.filled) == 2 * n_bn and report.converted == {}
    assert "(msra): 159 tensors used" in report.summary()  # 53 convs (1 + 16 x 3 + 4) and 53 BN scale/bias pairs


def test_detectron2_checkpoint_names_load_like_the_blobs(msra_file, image, tmp_path):
    """A detectron2 model-zoo checkpoint (full detector names, BN statistics present) of the same
    weights loads to the same trunk; its FPN and head tensors are left over."""
    path, blobs = msra_file
    model = {}
    for key, value in blobs.items():
        if key.startswith(("fc1000", "conv1_w_momentum")):
            continue
        if key == "conv1_w":
            name = "stem.conv1.weight"
        elif key.startswith("res_conv1_bn_"):
            name = "stem.conv1.norm." + {"s": "weight", "b": "bias"}[key[-1]]
        else:
            stage, block, branch, *rest = key.split("_")
            conv = {"branch2a": "conv1", "branch2b": "conv2", "branch2c": "conv3", "branch1": "shortcut"}[branch]
            name = f"{stage}.{block}.{conv}." + (
                "weight" if rest == ["w"] else "norm." + {"s": "weight", "b": "bias"}[rest[1]]
            )
        model["backbone.bottom_up." + name] = torch.from_numpy(value)
        if name.endswith("norm.weight"):  # detectron2 files carry the statistics
            base = "backbone.bottom_up." + name[: -len("weight")]
            model[base + "running_mean"] = torch.zeros(value.shape)
            model[base + "running_var"] = torch.ones(value.shape)
    model["backbone.fpn_lateral2.weight"] = torch.zeros(256, 256, 1, 1)
    d2 = tmp_path / "model_final.pth"
    torch.save({"model": model, "__author__": "Detectron2 Model Zoo"}, d2)
    assert weights_conventions(d2).format == "detectron2" and weights_conventions(d2).channels == "BGR"
    cfg = coco_r50_1x()
    apply_conventions(cfg, d2)
    got, report = ours(cfg, image, d2)
    want, _ = ours(coco_r50_1x(), image, path)
    assert_close(got, want)
    assert report.left_over == ["backbone.fpn_lateral2.weight"] and not report.filled


def torchvision_file(tmp_path):
    torch.manual_seed(1)
    net = torchvision.models.resnet50()
    for m in net.modules():  # statistics that matter, so that a wrong mapping shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.3, 0.8)  # keep 50 layers of random weights bounded
    path = tmp_path / "resnet50.pth"
    torch.save(net.state_dict(), path)
    return path, net.eval()


def torchvision_reference(net, image: torch.Tensor) -> list[torch.Tensor]:
    """torchvision's ResNet on its own input: RGB / 255, minus its mean, over its std."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (image[None] / 255.0 - mean) / std
    with torch.no_grad():
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        outs = []
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = layer(x)
            outs.append(x)
    return outs


def test_torchvision_weights_with_their_conventions(tmp_path, image):
    path, net = torchvision_file(tmp_path)
    cfg = coco_r50_1x()
    changes = apply_conventions(cfg, path)
    assert "model.backbone.stride_in_1x1=False" in changes and "input.format=RGB" in changes
    got, report = ours(cfg, image, path)
    assert_close(got, torchvision_reference(net, image))
    assert sorted(report.left_over) == sorted(
        ["fc.bias", "fc.weight"] + [k for k in net.state_dict() if k.endswith("num_batches_tracked")]
    )
    assert report.converted == {} and report.filled == {}


def test_torchvision_weights_into_a_bgr_std1_input_convert_conv1_exactly(tmp_path, image):
    """Channel order and pixel std are absorbed by the first convolution: a BGR, std-1 input
    with torchvision's mean gives torchvision's output."""
    path, net = torchvision_file(tmp_path)
    mean_bgr = [0.406 * 255, 0.456 * 255, 0.485 * 255]
    cfg = load_config(
        "coco_r50_1x",
        [
            "model.backbone.stride_in_1x1=false",
            "input.format=BGR",
            f"input.pixel_mean={json.dumps(mean_bgr)}",
            "input.pixel_std=[1.0, 1.0, 1.0]",
        ],
    )
    got, report = ours(cfg, image, path)
    assert_close(got, torchvision_reference(net, image))
    assert "reversed" in report.converted["conv1.weight"] and "scaled" in report.converted["conv1.weight"]


def test_what_cannot_be_absorbed_is_one_line(tmp_path, msra_file):
    path, _ = torchvision_file(tmp_path)
    model = build_panoptic_fcn(coco_r50_1x())
    trunk = model.backbone.bottom_up
    with pytest.raises(PointlyError, match="stride_in_1x1=false"):  # the preset's MSRA layout
        load_backbone_weights(
            trunk, path, stride_in_1x1=True, input_format="BGR", pixel_mean=[1, 2, 3], pixel_std=[1, 1, 1]
        )
    with pytest.raises(PointlyError, match="pixel mean"):
        load_backbone_weights(
            trunk, path, stride_in_1x1=False, input_format="RGB", pixel_mean=[100.0, 100.0, 100.0], pixel_std=[1, 1, 1]
        )
    r101 = build_panoptic_fcn(load_config("coco_r50_1x", ["model.backbone.depth=101"])).backbone.bottom_up
    with pytest.raises(PointlyError, match="trunk tensors are not in the file"):
        load_backbone_weights(
            r101, msra_file[0], stride_in_1x1=True, input_format="BGR", pixel_mean=[0, 0, 0], pixel_std=[1, 1, 1]
        )
    junk = tmp_path / "junk.pth"
    torch.save({"something.weight": torch.zeros(3)}, junk)
    with pytest.raises(PointlyError, match="unknown weight names"):
        weights_conventions(junk)


def test_the_coco_recipe_refuses_random_init(tmp_path, capsys, msra_file):
    with pytest.raises(PointlyError, match="starts from ImageNet weights"):
        check_backbone_start(coco_r50_1x())
    check_backbone_start(load_config("synthetic_small"))  # the synthetic recipe has no weights to start from
    gn = coco_r50_1x()
    gn.model.backbone.norm = "GN"
    gn.model.backbone.weights = str(msra_file[0])
    with pytest.raises(PointlyError, match="GroupNorm"):
        check_backbone_start(gn)
    out = tmp_path / "run"
    assert main(["train", "--config", "coco_r50_1x", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--backbone-weights" in err[0] and "--from-scratch" in err[0]
    assert not out.exists()
    # --from-scratch passes this check (and stops later, at the missing COCO data)
    assert main(["train", "--config", "coco_r50_1x", "--out", str(out), "--from-scratch"]) == 2
    assert "ImageNet" not in capsys.readouterr().err


@pytest.mark.slow
def test_coco_recipe_trains_from_a_weight_file_on_the_coco_sample(shared_data, msra_file, tmp_path, capsys):
    """The COCO preset from MSRA blobs on real COCO panoptic data (the sample's one split used for
    both), two iterations at a small size: finite losses, the report beside the run."""
    import math

    import pandas as pd

    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                "coco_r50_1x",
                "--coco-root",
                str(shared_data / "coco_panoptic_val2017"),
                "--coco-splits",
                "val2017,val2017",
                "--backbone-weights",
                str(msra_file[0]),
                "--max-iter",
                "2",
                "--set",
                "solver.ims_per_batch=1",
                "--set",
                "solver.reference_world_size=0",
                "--set",
                "input.min_size_train=[320]",
                "--set",
                "input.max_size_train=480",
                "--set",
                "data.num_workers=0",
                "--device",
                "cpu",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 2 and all(math.isfinite(v) for v in metrics["loss_total"])
    report = json.loads((out / "backbone_weights.json").read_text())
    assert report["format"] == "msra" and len(report["used"]) == 159
    assert sorted(report["left_over"]) == ["conv1_w_momentum", "fc1000_b", "fc1000_w"]
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--config",
                "coco_r50_1x",
                "--coco-root",
                str(tmp_path / "nothing"),
                "--out",
                str(tmp_path / "run2"),
            ]
        )
        == 2
    )
    assert "--coco-root" in capsys.readouterr().err
