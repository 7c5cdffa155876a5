"""The network as the engine builds it (:func:`pointly.model.engine.build.build_panoptic_fcn`) is
the network that ``PanopticFCN(cfg)`` built before the builder existed: the same initial weights
under the same seed, the same state-dict keys, the same losses and the same predictions.

The literal numbers below were RECORDED WITH THE OLD CODE (``PanopticFCN(cfg)`` reading the whole
config, before the network was built from keyword arguments and settings) and are asserted here
unchanged: a regression fingerprint of the construction order (every initialiser draws from
torch's global generator, so another order gives other weights) and of the loss and inference
wiring. They are exact (bit for bit) on the CPU with this repository's torch; a deliberate change
of a preset, an initialiser or the torch version changes them, and then they have to be recorded
again from code whose construction order is known to be right.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import torch

from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.checkpoint import load_checkpoint, write_checkpoint
from pointly.model.engine.config import config_to_dict, load_config
from pointly.model.network.gt import full_targets

torch.set_num_threads(2)

# synthetic_small with the head init pinned (the preset's default may move; these numbers are for
# "official", the init of every preset today)
SMALL = ["model.head_init=official"]
# the msra init and the DCNv2 position head: the other initialisation branches
SMALL_MSRA_DEFORM = ["model.head_init=msra", "model.position_head.deform=true"]

#: recorded with the old code: per state-dict key (in state-dict order), the float64 sum and sum
#: of squares of the tensor; synthetic_small (SMALL) built under torch.manual_seed(0)
SMALL_FINGERPRINT = {
    "backbone.bottom_up.conv1.weight": (-5.018750041808971, 5.94274807032385),
    "backbone.bottom_up.bn1.weight": (64.0, 64.0),
    "backbone.bottom_up.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer1.0.conv1.weight": (-1.89275079272511, 126.43032058066555),
    "backbone.bottom_up.layer1.0.bn1.weight": (64.0, 64.0),
    "backbone.bottom_up.layer1.0.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer1.0.conv2.weight": (18.476289299237635, 128.83224515390293),
    "backbone.bottom_up.layer1.0.bn2.weight": (64.0, 64.0),
    "backbone.bottom_up.layer1.0.bn2.bias": (0.0, 0.0),
    "backbone.bottom_up.layer1.1.conv1.weight": (11.307568777096662, 126.69142762887213),
    "backbone.bottom_up.layer1.1.bn1.weight": (64.0, 64.0),
    "backbone.bottom_up.layer1.1.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer1.1.conv2.weight": (2.955129961973398, 127.26936027161784),
    "backbone.bottom_up.layer1.1.bn2.weight": (64.0, 64.0),
    "backbone.bottom_up.layer1.1.bn2.bias": (0.0, 0.0),
    "backbone.bottom_up.layer2.0.conv1.weight": (-11.007827018287912, 127.54296068160305),
    "backbone.bottom_up.layer2.0.bn1.weight": (128.0, 128.0),
    "backbone.bottom_up.layer2.0.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer2.0.conv2.weight": (-7.038980800822912, 255.94797507283099),
    "backbone.bottom_up.layer2.0.bn2.weight": (128.0, 128.0),
    "backbone.bottom_up.layer2.0.bn2.bias": (0.0, 0.0),
    "backbone.bottom_up.layer2.0.downsample.0.weight": (12.327413307634743, 128.53564646234597),
    "backbone.bottom_up.layer2.0.downsample.1.weight": (128.0, 128.0),
    "backbone.bottom_up.layer2.0.downsample.1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer2.1.conv1.weight": (-10.81973346241395, 256.50661336783133),
    "backbone.bottom_up.layer2.1.bn1.weight": (128.0, 128.0),
    "backbone.bottom_up.layer2.1.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer2.1.conv2.weight": (-3.1381241947814544, 254.76047126679475),
    "backbone.bottom_up.layer2.1.bn2.weight": (128.0, 128.0),
    "backbone.bottom_up.layer2.1.bn2.bias": (0.0, 0.0),
    "backbone.bottom_up.layer3.0.conv1.weight": (-10.472964428803309, 257.2625771387317),
    "backbone.bottom_up.layer3.0.bn1.weight": (256.0, 256.0),
    "backbone.bottom_up.layer3.0.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer3.0.conv2.weight": (-10.214405703314569, 513.71196119805),
    "backbone.bottom_up.layer3.0.bn2.weight": (256.0, 256.0),
    "backbone.bottom_up.layer3.0.bn2.bias": (0.0, 0.0),
    "backbone.bottom_up.layer3.0.downsample.0.weight": (-17.986552270801667, 254.3380466274718),
    "backbone.bottom_up.layer3.0.downsample.1.weight": (256.0, 256.0),
    "backbone.bottom_up.layer3.0.downsample.1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer3.1.conv1.weight": (-24.886222260887564, 511.6233921922002),
    "backbone.bottom_up.layer3.1.bn1.weight": (256.0, 256.0),
    "backbone.bottom_up.layer3.1.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer3.1.conv2.weight": (11.955734015447042, 512.2662524095624),
    "backbone.bottom_up.layer3.1.bn2.weight": (256.0, 256.0),
    "backbone.bottom_up.layer3.1.bn2.bias": (0.0, 0.0),
    "backbone.bottom_up.layer4.0.conv1.weight": (7.959367241578794, 512.2257092310442),
    "backbone.bottom_up.layer4.0.bn1.weight": (512.0, 512.0),
    "backbone.bottom_up.layer4.0.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer4.0.conv2.weight": (-22.947681097493316, 1023.6521425161852),
    "backbone.bottom_up.layer4.0.bn2.weight": (512.0, 512.0),
    "backbone.bottom_up.layer4.0.bn2.bias": (0.0, 0.0),
    "backbone.bottom_up.layer4.0.downsample.0.weight": (9.944930214400415, 511.1182299067428),
    "backbone.bottom_up.layer4.0.downsample.1.weight": (512.0, 512.0),
    "backbone.bottom_up.layer4.0.downsample.1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer4.1.conv1.weight": (-12.353547353242023, 1024.916780588821),
    "backbone.bottom_up.layer4.1.bn1.weight": (512.0, 512.0),
    "backbone.bottom_up.layer4.1.bn1.bias": (0.0, 0.0),
    "backbone.bottom_up.layer4.1.conv2.weight": (13.657922713767139, 1023.2808146730622),
    "backbone.bottom_up.layer4.1.bn2.weight": (512.0, 512.0),
    "backbone.bottom_up.layer4.1.bn2.bias": (0.0, 0.0),
    "backbone.fpn.inner_blocks.0.0.weight": (3.2560727270756615, 61.90723962599003),
    "backbone.fpn.inner_blocks.0.0.bias": (0.0, 0.0),
    "backbone.fpn.inner_blocks.1.0.weight": (-4.535982439363579, 63.953648748424),
    "backbone.fpn.inner_blocks.1.0.bias": (0.0, 0.0),
    "backbone.fpn.inner_blocks.2.0.weight": (-12.544646755864278, 63.7460628735599),
    "backbone.fpn.inner_blocks.2.0.bias": (0.0, 0.0),
    "backbone.fpn.inner_blocks.3.0.weight": (10.645472142024346, 64.07915456492255),
    "backbone.fpn.inner_blocks.3.0.bias": (0.0, 0.0),
    "backbone.fpn.layer_blocks.0.0.weight": (-15.769398900287285, 63.71443456968988),
    "backbone.fpn.layer_blocks.0.0.bias": (0.0, 0.0),
    "backbone.fpn.layer_blocks.1.0.weight": (-3.570145283775105, 63.80632300023173),
    "backbone.fpn.layer_blocks.1.0.bias": (0.0, 0.0),
    "backbone.fpn.layer_blocks.2.0.weight": (4.439215514652176, 64.42279171476902),
    "backbone.fpn.layer_blocks.2.0.bias": (0.0, 0.0),
    "backbone.fpn.layer_blocks.3.0.weight": (12.05831745479918, 63.9529762492539),
    "backbone.fpn.layer_blocks.3.0.bias": (0.0, 0.0),
    "backbone.fpn.extra_blocks.p6.weight": (-7.949656246694758, 64.00761091595794),
    "backbone.fpn.extra_blocks.p6.bias": (0.0, 0.0),
    "backbone.fpn.extra_blocks.p7.weight": (-2.774310208183124, 63.89346265197145),
    "backbone.fpn.extra_blocks.p7.bias": (0.0, 0.0),
    "semantic_fpn.p2.0.weight": (-7.039212423589447, 128.26903642172908),
    "semantic_fpn.p2.0.norm.weight": (64.0, 64.0),
    "semantic_fpn.p2.0.norm.bias": (0.0, 0.0),
    "semantic_fpn.p3.0.weight": (-7.704510875140841, 126.30985036441376),
    "semantic_fpn.p3.0.norm.weight": (64.0, 64.0),
    "semantic_fpn.p3.0.norm.bias": (0.0, 0.0),
    "semantic_fpn.p4.0.weight": (6.418912549808965, 127.22717402464352),
    "semantic_fpn.p4.0.norm.weight": (64.0, 64.0),
    "semantic_fpn.p4.0.norm.bias": (0.0, 0.0),
    "semantic_fpn.p4.2.weight": (2.5830377734637295, 126.24591331412249),
    "semantic_fpn.p4.2.norm.weight": (64.0, 64.0),
    "semantic_fpn.p4.2.norm.bias": (0.0, 0.0),
    "semantic_fpn.p5.0.weight": (-20.459082275016783, 127.82185264254706),
    "semantic_fpn.p5.0.norm.weight": (64.0, 64.0),
    "semantic_fpn.p5.0.norm.bias": (0.0, 0.0),
    "semantic_fpn.p5.2.weight": (3.073808170213738, 127.90065013699932),
    "semantic_fpn.p5.2.norm.weight": (64.0, 64.0),
    "semantic_fpn.p5.2.norm.bias": (0.0, 0.0),
    "semantic_fpn.p5.4.weight": (13.7864325937594, 129.28315901350953),
    "semantic_fpn.p5.4.norm.weight": (64.0, 64.0),
    "semantic_fpn.p5.4.norm.bias": (0.0, 0.0),
    "feature_encoder.encode_head.encode_head_head_1.weight": (1.7530881787815815, 10.74280804591309),
    "feature_encoder.encode_head.encode_head_head_1.bias": (-0.22578989114845172, 0.01451427016644631),
    "feature_encoder.encode_head.encode_head_head_2.weight": (5.878425038215312, 10.597977184507616),
    "feature_encoder.encode_head.encode_head_head_2.bias": (0.25757129688281566, 0.03195617706790654),
    "feature_encoder.encode_head.encode_head_head_3.weight": (0.9998338820603863, 10.590265185221474),
    "feature_encoder.encode_head.encode_head_head_3.bias": (0.19259384396718815, 0.03705805809801924),
    "position_head.position_head.position_head_head_1.weight": (0.5130350927967129, 21.253005291225847),
    "position_head.position_head.position_head_head_1.norm.weight": (64.0, 64.0),
    "position_head.position_head.position_head_head_1.norm.bias": (0.0, 0.0),
    "position_head.position_head.position_head_head_2.weight": (0.7826335202852306, 21.388358391110764),
    "position_head.position_head.position_head_head_2.norm.weight": (64.0, 64.0),
    "position_head.position_head.position_head_head_2.norm.bias": (0.0, 0.0),
    "position_head.out_inst.weight": (0.07163178431866868, 0.3527149121508295),
    "position_head.out_inst.bias": (-13.140000343322754, 28.77660150375368),
    "position_head.out_sem.weight": (-0.19262189150799713, 0.27467234085477943),
    "position_head.out_sem.bias": (-10.950000286102295, 23.980501253128068),
    "kernel_head.kernel_head.kernel_head_head_1.weight": (-1.2254771298573814, 21.28356676918147),
    "kernel_head.kernel_head.kernel_head_head_1.norm.weight": (64.0, 64.0),
    "kernel_head.kernel_head.kernel_head_head_1.norm.bias": (0.0, 0.0),
    "kernel_head.kernel_head.kernel_head_head_2.weight": (1.782394843804525, 21.269119614256944),
    "kernel_head.kernel_head.kernel_head_head_2.norm.weight": (64.0, 64.0),
    "kernel_head.kernel_head.kernel_head_head_2.norm.bias": (0.0, 0.0),
    "kernel_head.out_conv.weight": (-2.773348995285801, 3.7018517601227536),
    "kernel_head.out_conv.bias": (0.0, 0.0),
    "thing_generator.embed_extractor.weight": (0.25080195103373626, 0.20299039406678798),
    "thing_generator.embed_extractor.bias": (0.0, 0.0),
    "stuff_generator.embed_extractor.weight": (-0.09388807191191972, 0.20101904281351768),
    "stuff_generator.embed_extractor.bias": (0.0, 0.0),
}
#: recorded with the old code: sha256 over (key, tensor bytes) of the whole state dict, seed 0
SMALL_MSRA_DEFORM_SHA = "64026149315762186e7c6dfb409566c8e687c7ea1a044fe8c62ff1a9ce795736"
COCO_R50_1X_SHA = "2e2c7a26e00af1e38dc549ee7b25153db01f11cf4d59f024bca37afb5e1dbaf5"
#: recorded with the old code: number of state-dict keys and sha256 of them joined by newlines
COCO_R50_1X_KEYS = 346
COCO_R50_1X_KEYS_SHA = "1fbc173a1d3846d265508b2ee2a7574129b676e0285b7764742b4098152e7d1f"

#: recorded with the old code: ``model(images, targets)`` on ``_batch``, SMALL under seed 0
LOSSES = {
    "loss_pos_th": 1.0094391107559204,
    "loss_pos_st": 1.9675843715667725,
    "loss_seg_th": 2.4591546058654785,
    "loss_seg_st": 1.5074712038040161,
}
#: recorded with the old code: gradient sums of the generators and the output convs after
#: ``sum(losses).backward()``
GRAD_SUMS = {
    "position_head.out_inst.weight": 152.99823022453347,
    "position_head.out_inst.bias": 0.7442684657871723,
    "position_head.out_sem.weight": -149.4836651272817,
    "position_head.out_sem.bias": -1.0469758808612823,
    "kernel_head.out_conv.weight": 0.4695742125573954,
    "kernel_head.out_conv.bias": 0.00224611536032171,
    "thing_generator.embed_extractor.weight": -0.6686705458479327,
    "thing_generator.embed_extractor.bias": 0.25088343946481473,
    "stuff_generator.embed_extractor.weight": 0.09692153040697171,
    "stuff_generator.embed_extractor.bias": -0.14141856773767358,
}
#: recorded with the old code: ``predict`` on ``_image`` after ``position_head.out_inst.bias`` was
#: set to 1 (confident centres, so things reach the merge); (id, category_id, isthing, score, area)
PREDICTION_SHA = "1ec3cd126455eabdb55c29efb914b1f899da6b767b65772a0a231f7b8c299ede"
PREDICTION = [
    (1, 2, True, 0.42056161165237427, 14000),
]
PREDICTION_MSRA_DEFORM_SHA = "7ebb96c9be16b1e5ccfc666b162d41aa0edf4654b2f0eef75c8daed4f174d7d1"
PREDICTION_MSRA_DEFORM = [
    (1, 1, True, 0.5497648119926453, 10798),
    (2, 7, False, 0.11174619197845459, 1373),
    (3, 10, False, 0.12133939564228058, 1829),
]


def _sums(model) -> dict[str, tuple[float, float]]:
    return {k: (float(v.double().sum()), float((v.double() ** 2).sum())) for k, v in model.state_dict().items()}


def _sha(model) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _build(name: str, overrides: list[str]):
    torch.manual_seed(0)
    return build_panoptic_fcn(load_config(name, overrides))


def _batch(cfg):
    """Two noise images (96 × 128, 128 × 112), each with two stuff halves and three things; the
    second with an ignored band of 5 stride-4 rows (the valid-aware paths)."""
    rng = np.random.default_rng(0)
    thing_index = {c: i for i, c in enumerate(cfg.thing_ids)}
    stuff_index = {c: i + 1 for i, c in enumerate(cfg.stuff_ids)}
    images, targets = [], []
    for h, w in [(96, 128), (128, 112)]:
        rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        lm = np.zeros((h, w), np.int32)
        lm[: h // 2, :] = 1
        lm[h // 2 :, :] = 2
        segs = [
            {"id": 1, "category_id": cfg.stuff_ids[0], "iscrowd": 0, "bbox": [0, 0, w, h // 2]},
            {"id": 2, "category_id": cfg.stuff_ids[1], "iscrowd": 0, "bbox": [0, h // 2, w, h - h // 2]},
        ]
        for j, (y, x, s) in enumerate([(10, 12, 30), (50, 60, 20), (20, 70, 40)]):
            lm[y : y + s, x : x + s] = 3 + j
            segs.append({"id": 3 + j, "category_id": cfg.thing_ids[j], "iscrowd": 0, "bbox": [x, y, s, s]})
        t = full_targets(lm, segs, thing_index, stuff_index)
        if h == 128:
            t.valid[:5, :] = 0
        images.append(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())
        targets.append(t)
    return images, targets


def _image() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 255, (100, 140, 3), dtype=np.uint8)


def _segments(pred) -> list[tuple]:
    return [(s["id"], s["category_id"], s["isthing"], s["score"], s["area"]) for s in pred.segments]


@pytest.fixture(scope="module")
def small():
    return _build("synthetic_small", SMALL)


def test_same_seed_same_initial_weights_as_the_old_constructor(small):
    assert list(small.state_dict()) == list(SMALL_FINGERPRINT)  # same keys, same order
    assert _sums(small) == SMALL_FINGERPRINT
    assert _sha(_build("synthetic_small", SMALL_MSRA_DEFORM)) == SMALL_MSRA_DEFORM_SHA


def test_coco_r50_1x_same_initial_weights_as_the_old_constructor():
    model = _build("coco_r50_1x", [])
    keys = list(model.state_dict())
    assert len(keys) == COCO_R50_1X_KEYS
    assert hashlib.sha256("\n".join(keys).encode()).hexdigest() == COCO_R50_1X_KEYS_SHA
    assert _sha(model) == COCO_R50_1X_SHA


def test_checkpoint_round_trip_keeps_keys_and_weights(small, tmp_path):
    """A checkpoint as a training run writes it loads back through ``load_checkpoint`` (which builds
    the network from the saved config) with the old code's keys and the same tensors."""
    path = tmp_path / "model_final.pth"
    write_checkpoint({"model": small.state_dict(), "config": config_to_dict(small.cfg), "pointly_checkpoint": 1}, path)
    loaded = load_checkpoint(path)
    assert list(loaded.state_dict()) == list(SMALL_FINGERPRINT)
    for key, value in small.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert not loaded.training and loaded.cfg.name == "synthetic_small"


def test_the_builder_attaches_the_config_and_the_settings(small):
    cfg = small.cfg
    assert cfg.model.head_init == "official"
    assert small.input_settings.min_size_test == cfg.input.min_size_test
    assert small.input_settings.pixel_mean == tuple(cfg.input.pixel_mean)
    assert small.target_settings.instance_scales == tuple(tuple(s) for s in cfg.model.instance_scales)
    assert small.loss_settings.pos_num == cfg.model.thing.pos_num
    assert small.inference_settings.thing_ids == tuple(cfg.thing_ids)
    assert small.cpu_channels_last == cfg.model.cpu_channels_last


def test_losses_and_gradients_as_the_old_code(small):
    model = copy.deepcopy(small).train()
    images, targets = _batch(model.cfg)
    losses = model(images, targets)
    assert {k: float(v.detach()) for k, v in losses.items()} == LOSSES
    sum(losses.values()).backward()
    assert {n: float(p.grad.double().sum()) for n, p in model.named_parameters() if n in GRAD_SUMS} == GRAD_SUMS


def test_predictions_as_the_old_code(small):
    model = copy.deepcopy(small).train()
    with torch.no_grad():
        model.position_head.out_inst.bias.fill_(1.0)
    (pred,) = model.predict([_image()])
    assert model.training  # predict restores the mode
    assert pred.label_map.shape == (100, 140)
    assert _segments(pred) == PREDICTION
    assert hashlib.sha256(pred.label_map.tobytes()).hexdigest() == PREDICTION_SHA
    deform = _build("synthetic_small", SMALL_MSRA_DEFORM)
    with torch.no_grad():
        deform.position_head.out_inst.bias.fill_(1.0)
    (pred,) = deform.predict([_image()])
    assert _segments(pred) == PREDICTION_MSRA_DEFORM
    assert hashlib.sha256(pred.label_map.tobytes()).hexdigest() == PREDICTION_MSRA_DEFORM_SHA
