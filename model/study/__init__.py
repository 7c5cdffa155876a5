"""The cost-versus-PQ study on top of everything else: target-quality and trained cells, trends with
intervals, reports."""
