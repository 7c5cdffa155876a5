"""``pointly convert-weights``: an official-format checkpoint lands tensor by tensor in our model.

The official key list (346 entries for R50, spec §4.1) and the expected destination of each key
(spec §4.2) are generated here from the spec's tables, independently of the converter's rename
table; every tensor carries distinct random values so a wrong destination cannot go unnoticed.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from pointly.cli.main import main as cli_main
from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.config import load_config
from pointly.model.engine.convert import convert_state_dict, load_official
from pointly.pointgen.base.errors import PointlyError

NORM = ("weight", "bias", "running_mean", "running_var")


def official_r50_keys() -> OrderedDict[str, tuple[tuple[int, ...], str]]:
    """official key → (shape, our key), from spec §4.1 (names, shapes) and §4.2 (destinations)."""
    out: OrderedDict = OrderedDict()

    def put(key, shape, ours):
        assert key not in out
        out[key] = (tuple(shape), ours)

    bu, tv = "backbone.bottom_up", "backbone.bottom_up"
    put(f"{bu}.stem.conv1.weight", (64, 3, 7, 7), f"{tv}.conv1.weight")
    for n in NORM:
        put(f"{bu}.stem.conv1.norm.{n}", (64,), f"{tv}.bn1.{n}")
    in_ch = 64
    for stage, blocks in zip((2, 3, 4, 5), (3, 4, 6, 3)):
        width = 64 * 2 ** (stage - 2)
        for b in range(blocks):
            src = f"{bu}.res{stage}.{b}"
            dst = f"{tv}.layer{stage - 1}.{b}"
            c_in = in_ch if b == 0 else 4 * width
            for j, shape in ((1, (width, c_in, 1, 1)), (2, (width, width, 3, 3)), (3, (4 * width, width, 1, 1))):
                put(f"{src}.conv{j}.weight", shape, f"{dst}.conv{j}.weight")
                c_out = shape[0]
                for n in NORM:
                    put(f"{src}.conv{j}.norm.{n}", (c_out,), f"{dst}.bn{j}.{n}")
            if b == 0:
                put(f"{src}.shortcut.weight", (4 * width, in_ch, 1, 1), f"{dst}.downsample.0.weight")
                for n in NORM:
                    put(f"{src}.shortcut.norm.{n}", (4 * width,), f"{dst}.downsample.1.{n}")
        in_ch = 4 * width
    for k, c in zip((2, 3, 4, 5), (256, 512, 1024, 2048)):
        put(f"backbone.fpn_lateral{k}.weight", (256, c, 1, 1), f"backbone.fpn.inner_blocks.{k - 2}.0.weight")
        put(f"backbone.fpn_lateral{k}.bias", (256,), f"backbone.fpn.inner_blocks.{k - 2}.0.bias")
        put(f"backbone.fpn_output{k}.weight", (256, 256, 3, 3), f"backbone.fpn.layer_blocks.{k - 2}.0.weight")
        put(f"backbone.fpn_output{k}.bias", (256,), f"backbone.fpn.layer_blocks.{k - 2}.0.bias")
    for p in ("p6", "p7"):
        put(f"backbone.top_block.{p}.weight", (256, 256, 3, 3), f"backbone.fpn.extra_blocks.{p}.weight")
        put(f"backbone.top_block.{p}.bias", (256,), f"backbone.fpn.extra_blocks.{p}.bias")
    # heads keep the official names (spec §4.2 "Keep the official names")
    for lvl, idx in (("p2", (0,)), ("p3", (0,)), ("p4", (0, 2)), ("p5", (0, 2, 4))):
        for i in idx:
            base = f"semantic_fpn.{lvl}.{i}"
            put(f"{base}.weight", (256, 256, 3, 3), f"{base}.weight")
            put(f"{base}.norm.weight", (256,), f"{base}.norm.weight")
            put(f"{base}.norm.bias", (256,), f"{base}.norm.bias")
    for i in (1, 2, 3):
        base = f"position_head.position_head.position_head_head_{i}"
        for key, shape in (
            (f"{base}.offset_mask_conv.weight", (27, 256, 3, 3)),
            (f"{base}.offset_mask_conv.bias", (27,)),
            (f"{base}.dcnv2.weight", (256, 256, 3, 3)),
            (f"{base}.dcnv2.norm.weight", (256,)),
            (f"{base}.dcnv2.norm.bias", (256,)),
        ):
            put(key, shape, key)
    for name, c in (("out_inst", 80), ("out_sem", 54)):
        put(f"position_head.{name}.weight", (c, 256, 3, 3), f"position_head.{name}.weight")
        put(f"position_head.{name}.bias", (c,), f"position_head.{name}.bias")
    for i in (1, 2, 3):
        base = f"kernel_head.kernel_head.kernel_head_head_{i}"
        put(f"{base}.weight", (256, 258 if i == 1 else 256, 3, 3), f"{base}.weight")
        put(f"{base}.norm.weight", (256,), f"{base}.norm.weight")
        put(f"{base}.norm.bias", (256,), f"{base}.norm.bias")
    put("kernel_head.out_conv.weight", (256, 256, 3, 3), "kernel_head.out_conv.weight")
    put("kernel_head.out_conv.bias", (256,), "kernel_head.out_conv.bias")
    for i in (1, 2, 3):
        base = f"feature_encoder.encode_head.encode_head_head_{i}"
        put(f"{base}.weight", (64, 258 if i == 1 else 64, 3, 3), f"{base}.weight")
        put(f"{base}.bias", (64,), f"{base}.bias")
    for g in ("thing_generator", "stuff_generator"):
        put(f"{g}.embed_extractor.weight", (64, 256, 1, 1), f"{g}.embed_extractor.weight")
        put(f"{g}.embed_extractor.bias", (64,), f"{g}.embed_extractor.bias")
    return out


KEYS = official_r50_keys()


def official_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 values; each tensor is offset by its index so no two tensors look alike."""
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(shape).astype(np.float32) + i) for i, (k, (shape, _)) in enumerate(KEYS.items())}


@pytest.fixture(scope="module")
def r50():
    return build_panoptic_fcn(load_config("coco_r50_3x"))


@pytest.fixture(scope="module")
def target_state(r50):
    return {k: v.clone() for k, v in r50.state_dict().items()}


def test_official_key_list_matches_the_spec():
    assert len(KEYS) == 346
    # spec §1: 37.0M parameters; detectron2's FrozenBN keeps weight/bias/mean/var as buffers
    n_params = sum(
        int(np.prod(s)) for k, (s, _) in KEYS.items() if not (k.startswith("backbone.bottom_up") and ".norm." in k)
    )
    assert abs(n_params / 1e6 - 37.0) < 0.05


def test_every_tensor_lands_where_it_should(target_state, r50):
    weights = official_weights()
    official = {k: torch.from_numpy(v) for k, v in weights.items()}
    state = convert_state_dict(official, target_state)
    assert set(state) == set(target_state)  # nothing left over on our side
    assert len(state) == len(KEYS)  # nothing left over on theirs (one destination each)
    assert {ours for _, ours in KEYS.values()} == set(target_state)
    for key, (_shape, ours) in KEYS.items():
        assert torch.equal(state[ours], torch.from_numpy(weights[key])), key
    r50.load_state_dict(state, strict=True)


def test_file_formats(tmp_path):
    """.pth snapshot, detectron2 .pkl of numpy arrays with module. prefixes, .pth of numpy arrays."""
    weights = {k: v for k, v in official_weights(seed=1).items() if v.size < 100_000}  # small ones suffice here
    pth = tmp_path / "snapshot.pth"  # detectron2 training snapshot: model, optimizer, iteration
    torch.save(
        {
            "model": {k: torch.from_numpy(v) for k, v in weights.items()},
            "iteration": 269999,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]},
        },
        pth,
    )
    pkl = tmp_path / "model_final.pkl"
    with open(pkl, "wb") as fh:
        pickle.dump({"model": {f"module.{k}": v for k, v in weights.items()}, "__author__": "test"}, fh)
    npth = tmp_path / "numpy_arrays.pth"  # numpy arrays are data: no --allow-unsafe needed
    torch.save({"model": weights}, npth)
    for src in (pth, pkl, npth):
        got = load_official(src)
        assert list(got) == list(weights), src.name
        for k, v in weights.items():
            assert torch.equal(got[k], torch.from_numpy(v)), (src.name, k)


@pytest.mark.slow
def test_cli_converts_a_full_checkpoint(tmp_path):
    weights = official_weights(seed=3)
    pkl = tmp_path / "model_final.pkl"
    with open(pkl, "wb") as fh:
        pickle.dump({"model": weights, "__author__": "test"}, fh)
    out = tmp_path / "converted.pth"
    assert cli_main(["convert-weights", str(pkl), "--out", str(out), "--config", "coco_r50_512_3x"]) == 0
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert len(ckpt["model"]) == 346
    for key, (_, ours) in KEYS.items():
        assert torch.equal(ckpt["model"][ours], torch.from_numpy(weights[key])), key
    cfg = ckpt["config"]
    assert cfg["name"] == "coco_r50_512_3x" and cfg["input"]["min_size_test"] == 512
    assert len(cfg["thing_ids"]) == 80 and len(cfg["stuff_ids"]) == 53
    assert cfg["thing_ids"] == sorted(cfg["thing_ids"]) and cfg["stuff_ids"][0] == 92
    from pointly.model.engine.checkpoint import load_checkpoint  # the training code's loader reads it

    model = load_checkpoint(out)
    assert torch.equal(
        model.state_dict()["backbone.fpn.extra_blocks.p7.weight"],
        torch.from_numpy(weights["backbone.top_block.p7.weight"]),
    )


def test_mismatches_are_reported(tmp_path, target_state, capsys):
    weights = {k: torch.from_numpy(v) for k, v in official_weights(seed=2).items()}
    extra = dict(weights, **{"roi_heads.box_predictor.weight": torch.zeros(3)})
    with pytest.raises(PointlyError, match="1 checkpoint entries have no place.*roi_heads"):
        convert_state_dict(extra, target_state)
    missing = dict(weights)
    del missing["kernel_head.out_conv.bias"]
    with pytest.raises(PointlyError, match="1 model entries are not in the checkpoint: kernel_head.out_conv.bias"):
        convert_state_dict(missing, target_state)
    bad = dict(weights, **{"position_head.out_inst.weight": torch.zeros(8, 256, 3, 3)})
    with pytest.raises(PointlyError, match=r"out_inst.weight: shape \(8, 256, 3, 3\)"):
        convert_state_dict(bad, target_state)
    star = dict(weights, **{"feature_encoder.encode_head.encode_head_head_1.offset_mask_conv.weight": torch.zeros(1)})
    with pytest.raises(PointlyError, match="Star"):
        convert_state_dict(star, target_state)
    # pixel_mean/std buffers are not weights: accepted and not copied
    with_buffers = dict(
        weights, pixel_mean=torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1), pixel_std=torch.ones(3, 1, 1)
    )
    assert len(convert_state_dict(with_buffers, target_state)) == 346
    # a pickle that would run code is refused, with exit code 2 and one line from the CLI
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"model": {"x": _Evil()}}))
    with pytest.raises(PointlyError, match="other than arrays"):
        load_official(evil)
    assert cli_main(["convert-weights", str(evil), "--out", str(tmp_path / "o.pth")]) == 2
    err = capsys.readouterr().err
    assert "evil.pkl" in err and "--allow-unsafe" in err and "Traceback" not in err
    assert not (tmp_path / "o.pth").exists()
    garbage = tmp_path / "broken.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    assert cli_main(["convert-weights", str(garbage), "--out", str(tmp_path / "o.pth")]) == 2
    assert "not a readable torch checkpoint" in capsys.readouterr().err


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())
