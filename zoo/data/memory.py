"""NumPy arrays that TensorFlow can use without a copy.

`tf.convert_to_tensor` (and `tf.data.Dataset.from_tensors` of an array) copies the array, and
on a VM the copy's fresh memory is what costs: 31 MB of MNIST samples, 0.03-0.06 s in a fresh
process on a 2-core AMD EPYC, against 2 ms shared. DLPack shares the memory, but TensorFlow
aborts the process (`Check failed: IsAligned()`) on a buffer that is not aligned to its 64
bytes, and NumPy aligns to 16. So arrays made here are 64-byte aligned (`aligned_empty`), and
`shared_tensor` shares only such arrays, copying any other.
"""

from __future__ import annotations

import numpy as np

ALIGNMENT = 64  # bytes: TensorFlow's CPU tensors (Eigen's largest alignment)


def aligned_empty(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialized C-contiguous array whose data starts at a multiple of `ALIGNMENT` bytes."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + size].view(dtype).reshape(shape)


def shareable(array) -> bool:
    """Whether `shared_tensor` can share `array`'s memory: a non-empty, writeable (DLPack exports
    no read-only array), C-contiguous NumPy array aligned to `ALIGNMENT` bytes."""
    return (isinstance(array, np.ndarray) and array.size > 0 and array.flags.c_contiguous
            and array.flags.writeable and array.ctypes.data % ALIGNMENT == 0)


def shared_tensor(array: np.ndarray):
    """A TensorFlow tensor of `array` that shares its memory when it can (`shareable`), else a
    copy. The tensor reads what the array holds: do not write to the array afterwards.

    Example:
    >>> x = aligned_empty((2, 3))
    >>> x[...] = 1.0
    >>> shared_tensor(x).shape
    TensorShape([2, 3])
    """
    import tensorflow as tf

    if shareable(array):
        try:
            return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        except (BufferError, TypeError, ValueError, tf.errors.OpError):
            pass  # a dtype DLPack or TensorFlow does not take: copy it
    return tf.convert_to_tensor(array)
