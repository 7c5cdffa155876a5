"""The Panoptic FCN network: backbone + FPN, heads, deformable convolution, ground-truth encoding,
losses and inference. It knows nothing of files, training loops or studies."""
