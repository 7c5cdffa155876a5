"""pointly.annotator: the Gradio point-annotation app.

Modules, one job each:

* :mod:`~pointly.annotator.images` — the image folder: listing, safe name lookup, COCO ids, robust loading
  (EXIF, grey/RGBA/16-bit, truncated and huge files skipped);
* :mod:`~pointly.annotator.journal` — fsync'ed per-annotator JSON-lines journals;
* :mod:`~pointly.annotator.store` — the project state replayed from the journals: segments,
  image holds, points JSON and PointSup export;
* :mod:`~pointly.annotator.timing` — live cost numbers via :mod:`pointly.pointgen.points.cost`;
* :mod:`~pointly.annotator.preview` — target preview via :mod:`pointly.pointgen.targets.build`;
* :mod:`~pointly.annotator.render` — the canvas picture;
* :mod:`~pointly.annotator.users` — the ``--users`` file and login check;
* :mod:`~pointly.annotator.guard` — the HTTP guard: uploads refused, request bodies bounded,
  canvas renders served only to their own user;
* :mod:`~pointly.annotator.app` — handlers and the Gradio Blocks (``static/`` holds the page
  script for keyboard shortcuts and lossless clicks, and the CSS);
* :mod:`~pointly.annotator.samples` — the bundled sample images.
"""
