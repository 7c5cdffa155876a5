"""pointly.pointgen: points from masks (simulator), the points JSON format, training targets
from points, and the annotation-cost model."""
