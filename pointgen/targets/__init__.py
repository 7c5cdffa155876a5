"""Training targets from points: shapes, rasterisation, centres, overlap rules, image-aware regions,
the target builder, its preview and its quality against true masks."""
