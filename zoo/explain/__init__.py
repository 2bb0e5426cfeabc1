"""Explanations of zoo models, used by `python -m zoo explain` (zoo/cli/explain.py).

- `zoo.explain.text`: text classifiers: attention weights, LIME, integrated gradients through the
  word embeddings, and the deletion test of faithfulness.
- `zoo.explain.image`: image models: integrated gradients, occlusion, attention over rows.
- `zoo.explain.embed`: PCA / t-SNE plots and a TensorBoard projector log of a model's representations.
- `zoo.explain.render`: word heat maps, self-contained HTML pages, atomic writes of several files.

Nothing is imported here: each command imports only the module it needs.
"""
