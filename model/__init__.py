"""pointly.model: Panoptic FCN in plain PyTorch + torchvision, training, inference, evaluation."""
