"""The one place where a training :class:`~pointly.model.engine.config.Config` becomes a network.

:func:`build_panoptic_fcn` writes the whole Panoptic FCN out once, every submodule and setting by
keyword (the idea of detectron2's ``from_config`` and segment-anything's ``build_sam``); the
network layer (:mod:`pointly.model.network`) never sees the config. The ``*_settings`` functions
give the non-module settings of a config on their own, for code (and tests) that call the
losses, the level-target encoding or the post-processing directly.

The submodules are constructed in a fixed order (backbone, semantic FPN, feature encoder,
position head, kernel head, thing generator, stuff generator): their initialisers draw from
torch's global generator, so this order is what makes a seed give the same initial weights.
"""

from __future__ import annotations

from pointly.model.engine.config import Config
from pointly.model.network.backbone import Backbone
from pointly.model.network.gt import TargetSettings
from pointly.model.network.heads import FeatureEncoder, KernelGenerator, KernelHead, PositionHead, SemanticFPN
from pointly.model.network.inference import InferenceSettings
from pointly.model.network.losses import LossSettings
from pointly.model.network.panoptic_fcn import InputSettings, PanopticFCN


def input_settings(cfg: Config) -> InputSettings:
    i = cfg.input
    return InputSettings(
        pixel_mean=tuple(float(v) for v in i.pixel_mean),
        pixel_std=tuple(float(v) for v in i.pixel_std),
        format=i.format,
        size_divisibility=i.size_divisibility,
        min_size_test=i.min_size_test,
        max_size_test=i.max_size_test,
    )


def target_settings(cfg: Config) -> TargetSettings:
    m = cfg.model
    return TargetSettings(
        num_things=m.thing.num_classes,
        num_stuff=m.stuff.num_classes,
        instance_scales=tuple(tuple(s) for s in m.instance_scales),
        min_overlap=m.thing.min_overlap,
        gaussian_sigma=m.thing.gaussian_sigma,
    )


def loss_settings(cfg: Config) -> LossSettings:
    lc = cfg.loss
    return LossSettings(
        position_weight=lc.position_weight,
        segment_weight=lc.segment_weight,
        focal_alpha=lc.focal_alpha,
        focal_gamma=lc.focal_gamma,
        dice_eps=lc.dice_eps,
        pos_num=cfg.model.thing.pos_num,
        mask_centre_loss=lc.mask_centre_loss,
    )


def inference_settings(cfg: Config) -> InferenceSettings:
    m, ic = cfg.model, cfg.inference
    return InferenceSettings(
        num_stuff=m.stuff.num_classes,
        thing_ids=tuple(cfg.thing_ids),
        stuff_ids=tuple(cfg.stuff_ids),
        thing_thres=m.thing.thres,
        stuff_thres=m.stuff.thres,
        top_num=m.thing.top_num,
        pool_sizes=tuple(ic.pool_sizes),
        similar_thres=ic.similar_thres,
        class_specific=ic.class_specific,
        inst_thres=ic.inst_thres,
        score_floor=ic.score_floor,
        inst_thresh=ic.inst_thresh,
        overlap_thresh=ic.overlap_thresh,
        stuff_area_limit=ic.stuff_area_limit,
    )


def build_panoptic_fcn(cfg: Config) -> PanopticFCN:
    """The :class:`PanopticFCN` of ``cfg`` (fresh initial weights from torch's global generator),
    with ``cfg`` attached as ``model.cfg`` for the engine (checkpoints, evaluation)."""
    m = cfg.model
    groups = m.gn_groups
    # construction order = initialisation order: keep it (see the module docstring)
    backbone = Backbone(
        depth=m.backbone.depth,
        norm=m.backbone.norm,
        stride_in_1x1=m.backbone.stride_in_1x1,
        freeze_at=m.backbone.freeze_at,
        fpn_channels=m.fpn.channels,
        gn_groups=groups,
    )
    semantic_fpn = SemanticFPN(
        in_channels=m.fpn.channels, channels=m.semantic_fpn.channels, groups=groups, norm=m.semantic_fpn.norm
    )
    feature_encoder = FeatureEncoder(
        in_channels=m.semantic_fpn.channels,
        channels=m.feature_encoder.channels,
        num_convs=m.feature_encoder.num_convs,
        coord=m.feature_encoder.coord,
        init=m.head_init,
    )
    position_head = PositionHead(
        in_channels=m.fpn.channels,
        channels=m.position_head.channels,
        num_convs=m.position_head.num_convs,
        num_things=m.thing.num_classes,
        num_stuff=m.stuff.num_classes,
        deform=m.position_head.deform,
        groups=groups,
        thing_bias=m.thing.bias,
        stuff_bias=m.stuff.bias,
        deform_impl=m.position_head.deform_impl,
        init=m.head_init,
    )
    kernel_head = KernelHead(
        in_channels=m.fpn.channels,
        channels=m.kernel_head.channels,
        num_convs=m.kernel_head.num_convs,
        coord=m.kernel_head.coord,
        groups=groups,
        init=m.head_init,
    )
    thing_generator = KernelGenerator(
        in_channels=m.kernel_head.channels, out_channels=m.feature_encoder.channels, init=m.head_init
    )
    stuff_generator = KernelGenerator(
        in_channels=m.kernel_head.channels, out_channels=m.feature_encoder.channels, init=m.head_init
    )
    model = PanopticFCN(
        backbone=backbone,
        semantic_fpn=semantic_fpn,
        feature_encoder=feature_encoder,
        position_head=position_head,
        kernel_head=kernel_head,
        thing_generator=thing_generator,
        stuff_generator=stuff_generator,
        input_settings=input_settings(cfg),
        target_settings=target_settings(cfg),
        loss_settings=loss_settings(cfg),
        inference_settings=inference_settings(cfg),
        cpu_channels_last=m.cpu_channels_last,
    )
    model.cfg = cfg
    return model
