"""Points: the annotation simulator (sampling, batched pools, the simulate entry point) and the
annotation-time cost model."""
