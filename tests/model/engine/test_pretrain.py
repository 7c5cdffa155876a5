"""The tag pre-trained backbone (pointly.model.engine.pretrain): disjoint images, tags from the
panoptic labels, a weight file the loader reads back exactly, the config checks, the cache.

The expectations are independent of the code under test: the tags are read from the panoptic id
map (category = id // 1000, the generator's encoding) rather than from the segment list the code
uses; average precision is computed by hand; the loaded trunk is compared tensor by tensor with
the file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointly.cli.main import main
from pointly.data.synth import generate_image, image_rng
from pointly.model.engine import pretrain as pt
from pointly.model.engine.backbone_weights import load_backbone_weights, weights_conventions
from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.config import load_config
from pointly.model.engine.train import check_backbone_start
from pointly.pointgen.base.errors import PointlyError

TINY = pt.TagPretraining(images=6, held_out=4, iters=2, batch=3, warmup_iters=1, seed=0)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    cfg = load_config("synthetic_small")
    path = tmp_path_factory.mktemp("pretrain") / "tags.pth"
    record = pt.pretrain_backbone(cfg, TINY, path, progress=False)
    return path, record


def test_pretraining_images_are_none_of_the_datasets_images():
    """The first pre-training images against the first images of both splits of dataset seeds 0-2:
    no pixel array repeats (the seed streams differ)."""
    ours = {generate_image(pt.tag_image_rng(0, i), 64).rgb.tobytes() for i in range(8)}
    theirs = {
        generate_image(image_rng(seed, split, i), 64).rgb.tobytes()
        for seed in range(3)
        for split in ("train", "val")
        for i in range(8)
    }
    assert len(ours) == 8 and not ours & theirs


def test_tags_are_the_categories_of_the_id_map():
    cfg = load_config("synthetic_small")
    columns = pt.tag_columns(cfg)
    assert sorted(columns) == sorted(c["id"] for c in cfg.categories)
    _, tags = pt.pretraining_images(TINY, columns, 3, 4)
    for k in range(4):
        ids = generate_image(pt.tag_image_rng(TINY.seed, 3 + k), TINY.size).ids
        present = {int(v) // 1000 for v in np.unique(ids) if v > 0}
        assert {c for c, t in zip(columns, tags[k]) if t == 1} == present


def test_average_precision_by_hand():
    scores = np.array([[0.9, 0.1], [0.8, 0.4], [0.7, 0.3], [0.6, 0.2]])
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    # tag 0: positives at ranks 1 and 3 -> (1/1 + 2/3) / 2; tag 1: its positive ranks first -> 1
    assert pt.average_precision(scores, labels) == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert np.isnan(pt.average_precision(scores, np.zeros_like(labels)))


def test_the_file_loads_back_exactly_into_a_fresh_trunk(tiny_file):
    path, record = tiny_file
    conv = weights_conventions(path)
    assert (conv.format, conv.norm, conv.channels, conv.stride_in_1x1) == ("pointly", "GN", "BGR", False)
    assert record["settings"]["iters"] == TINY.iters and record["tag_columns"]
    assert 0.0 <= record["held_out"]["tag_accuracy"] <= 1.0
    cfg = load_config("synthetic_small")
    trunk = build_panoptic_fcn(cfg).backbone.bottom_up
    saved = torch.load(path, weights_only=True)["model"]
    assert set(saved) == set(trunk.state_dict())
    assert any(not torch.equal(saved[k], v) for k, v in trunk.state_dict().items())  # fresh init differs
    i = cfg.input
    report = load_backbone_weights(
        trunk, path, stride_in_1x1=False, input_format=i.format, pixel_mean=i.pixel_mean, pixel_std=i.pixel_std
    )
    assert len(report.used) == len(saved) and not report.converted and not report.left_over
    for k, v in trunk.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_config_checks_name_the_norm(tiny_file):
    path, _ = tiny_file
    cfg = load_config("synthetic_small")
    cfg.model.backbone.weights = str(path)
    check_backbone_start(cfg)  # a GroupNorm file into the GroupNorm trunk it was made for
    cfg.model.backbone.norm = "FrozenBN"
    with pytest.raises(PointlyError, match="trained with GN"):
        check_backbone_start(cfg)


def test_cache_makes_the_file_once_per_setting(tmp_path, monkeypatch):
    made = []

    def fake(cfg, settings, out, **kw):
        made.append(settings)
        torch.save({"model": {}}, out)

    monkeypatch.setattr(pt, "pretrain_backbone", fake)
    cfg = load_config("synthetic_small")
    a = pt.ensure_pretrained(cfg, TINY, tmp_path)
    assert pt.ensure_pretrained(cfg, TINY, tmp_path) == a and len(made) == 1
    b = pt.ensure_pretrained(cfg, pt.TagPretraining(iters=3), tmp_path)
    cfg.solver.cpu_amp = not cfg.solver.cpu_amp
    c = pt.ensure_pretrained(cfg, TINY, tmp_path)
    assert len({a, b, c}) == 3 and len(made) == 3


def test_cli_refuses_a_folder_as_output(tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path), "--iters", "1", "--images", "2", "--held-out", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "folder" in err[0]
