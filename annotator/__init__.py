"""pointly.annotator: the Gradio point-annotation app (click journal, keyboard, export)."""
