"""pointly.annotator: the Gradio point-annotation app.

Modules, one job each:

* :mod:`~pointly.annotator.images` — the image folder: listing, safe name lookup, COCO ids, robust loading
  (EXIF, grey/RGBA/16-bit, truncated and huge files skipped);
* :mod:`~pointly.annotator.journal` — fsync'ed per-annotator JSON-lines journals;
* :mod:`~pointly.annotator.state` — the in-memory records: images, segments, points, annotators;
* :mod:`~pointly.annotator.store` — the project store: its project file and the annotation
  actions, on top of :mod:`~pointly.annotator.history` (the journals replayed into the state, each
  action journaled, then applied), :mod:`~pointly.annotator.holds` (who holds which image),
  :mod:`~pointly.annotator.views` (what the UI reads) and :mod:`~pointly.annotator.export`
  (``points.json`` and ``pointsup.json``);
* :mod:`~pointly.annotator.timing` — live cost numbers via :mod:`pointly.pointgen.points.cost`;
* :mod:`~pointly.annotator.preview` — target preview via :mod:`pointly.pointgen.targets.build`;
* :mod:`~pointly.annotator.render` — the canvas picture;
* :mod:`~pointly.annotator.users` — the ``--users`` file and login check;
* :mod:`~pointly.annotator.guard` — the HTTP guard: uploads refused, request bodies bounded,
  canvas renders served only to their own user;
* :mod:`~pointly.annotator.app` — the handlers, independent of Gradio;
* :mod:`~pointly.annotator.layout` — the Gradio page: layout, UI events and the server start
  (``static/`` holds the page script for keyboard shortcuts and lossless clicks, and the CSS);
* :mod:`~pointly.annotator.api` — the HTTP API (twin endpoints of the UI actions);
* :mod:`~pointly.annotator.samples` — the bundled sample images.
"""
