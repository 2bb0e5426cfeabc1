"""Data: image, idx and text files, image datasets from any source, and the SR pipelines."""

from zoo.data.arrays import load_array
from zoo.data.idx import read_idx, read_mnist
from zoo.data.images import (bicubic_downscale, bicubic_upscale, crop_to_multiple, list_images,
                             read_image, read_images, write_image)
from zoo.data.sources import load_images, tfds_dataset
from zoo.data.sr import sr_eval_dataset, sr_eval_images, sr_train_batches, sr_train_dataset
from zoo.data.stream import Images, open_images
from zoo.data.text import decode_text, encode_labels, read_numeric_table, read_text_table

__all__ = ["Images", "bicubic_downscale", "bicubic_upscale", "crop_to_multiple", "decode_text", "encode_labels",
           "list_images", "load_array", "load_images", "open_images", "read_idx", "read_image",
           "read_images", "read_mnist", "read_numeric_table", "read_text_table", "sr_eval_dataset",
           "sr_eval_images", "sr_train_batches", "sr_train_dataset", "tfds_dataset", "write_image"]
