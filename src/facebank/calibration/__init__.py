"""Measuring a model: its operating points (``points``: every distance threshold facebank uses, from
labelled development photos) and, for a model without a card, the input preset that fits it
(``presets``). Built on evaluate/ (protocols, caches, metrics) and cluster/ (the cluster edge)."""
