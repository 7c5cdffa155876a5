"""The cost-versus-PQ study on top of everything else: one engine (grid, rows, resume, shards,
report with trends and intervals) whose depth only decides how a cell is scored: the quality of
its targets, or a model trained on them."""
