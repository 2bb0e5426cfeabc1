"""tf.data pipelines and image I/O."""

from zoo.data.images import (bicubic_downscale, bicubic_upscale, crop_to_multiple, list_images,
                             read_image, read_images, write_image)
from zoo.data.sr import sr_eval_images, sr_train_dataset

__all__ = ["bicubic_downscale", "bicubic_upscale", "crop_to_multiple", "list_images", "read_image",
           "read_images", "sr_eval_images", "sr_train_dataset", "write_image"]
