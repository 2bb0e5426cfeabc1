"""Evaluation, one module per family, each in its field's published convention:

- `zoo.evaluation.metrics`: PSNR / SSIM on BT.601 Y, the Frechet distance (NumPy formulas, Keras metrics);
- `zoo.evaluation.sr`: super-resolution scoring against bicubic (`evaluate_sr`);
- `zoo.evaluation.vae`: VAE likelihood (negative ELBO, importance-weighted NLL);
- `zoo.evaluation.frechet`: the Frechet classifier distance of generated images;
- `zoo.evaluation.classifier`: classifier scores (accuracy, per-class precision / recall / F1,
  the confusion matrix, ROC-AUC).

Used alike by the training callbacks, `python -m zoo eval` and the README figure scripts.
"""
