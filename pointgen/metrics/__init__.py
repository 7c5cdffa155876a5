"""Metrics shared by the target quality and the model's evaluation: panoptic quality (:mod:`.pq`)."""
