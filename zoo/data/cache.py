"""Whether decoded images are kept in memory or streamed from disk: one rule for every pipeline.

Small sets (T91, MNIST) are re-read thousands of times and decoding them once pays; a folder of
photos (DIV2K: 800 x 2040x1356 = 6.6 GB decoded) must stream. `--cache auto` keeps the decoded
images in memory when they take at most `CACHE_BUDGET_BYTES` (256 MiB: T91 takes 15, BSD200 93,
MNIST 47 as uint8 or 188 as float32; 40 DIV2K photos 317), `on` always, `off` never. Streaming
costs little where it is used: SR decodes about one photo per batch (`zoo.data.sr`).
"""

from __future__ import annotations

from zoo.errors import UserError

CACHE_SETTINGS = ("auto", "on", "off")
CACHE_BUDGET_BYTES = 256 << 20  # 256 MiB of decoded pixels (held twice while the cache is built)


def keep_in_memory(setting: str, decoded_bytes: int, what: str, announce: bool = True) -> bool:
    """Decide (and print, with the reason) whether `what` is decoded once and kept in memory.

    Args:
        setting: "auto", "on" or "off" (the recipes' `--cache` flag).
        decoded_bytes: the size of all images once decoded (from their headers, not decoded).
        what: names the data in the printed line, e.g. "training images (91 files)".
        announce: print the decision.

    Returns:
        True to decode once and keep the images in memory, False to stream them from disk.

    Raises:
        UserError: an unknown setting.
    """
    if setting not in CACHE_SETTINGS:
        raise UserError(f"--cache must be one of {', '.join(CACHE_SETTINGS)}, not {setting!r}")
    size = f"{decoded_bytes / 2**20:,.0f} MiB decoded"
    if setting == "auto":
        keep = decoded_bytes <= CACHE_BUDGET_BYTES
        budget = f"the {CACHE_BUDGET_BYTES >> 20} MiB budget"
        why = f"{size}, {'within' if keep else 'over'} {budget}; --cache on|off forces it"
    else:
        keep = setting == "on"
        why = f"{size}, --cache {setting}"
    if announce:
        print(f"data: {what}: {'kept in memory' if keep else 'streamed from disk'} ({why})", flush=True)
    return keep
