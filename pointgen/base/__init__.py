"""The base layer: the project error, atomic files, pixel limits, the COCO and points formats and the
categories. It imports nothing else of pointly."""
