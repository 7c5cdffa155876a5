"""Points that travel: conversions between the points format and PointSup, CVAT and Label Studio."""
