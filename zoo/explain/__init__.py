"""Explanations of zoo models, used by `python -m zoo explain` (zoo/cli/explain.py).

- `zoo.explain.text`: text classifiers: attention weights, LIME, integrated gradients through the
  word embeddings, SHAP over the words, and the deletion test of faithfulness.
- `zoo.explain.image`: image models: integrated gradients, occlusion, attention over rows, LIME
  and SHAP over superpixels.
- `zoo.explain.shap`: Kernel SHAP of any players (as the `shap` package's KernelExplainer).
- `zoo.explain.superpixels`: image players (quickshift superpixels or a patch grid) and LIME on
  images (as the `lime` package's LimeImageExplainer).
- `zoo.explain.embed`: PCA / t-SNE plots and a TensorBoard projector log of a model's representations.
- `zoo.explain.render`: word heat maps, self-contained HTML pages, atomic writes of several files.

Nothing is imported here: each command imports only the module it needs.
"""
