"""pointly.data: category files, bundled samples and the synthetic panoptic dataset generator."""
