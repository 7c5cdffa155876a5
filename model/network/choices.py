"""The network's selectable implementations, by the names the config uses (no torch import, so that
the config can check them cheaply)."""

#: the DCNv2 implementations of ``model.position_head.deform_impl`` (:mod:`.deform_conv`)
DEFORM_IMPLEMENTATIONS = ("auto", "torchvision", "sampled")

#: the head initialisations of ``model.head_init`` (:func:`.heads.init_head_conv`)
HEAD_INITS = ("official", "msra")
