"""Row blocks of the jobs × technicians arrays, filled on several threads.

At 10,000 jobs × 3,000 technicians each such array is 240 MB: computed whole, every temporary is
another 240 MB written and read back. Block by block the temporaries stay small and are reused, and
numpy releases the GIL inside its loops, so threads fill blocks side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

ROWS_PER_BLOCK = 256


def by_rows(n_rows: int, fill: Callable[[slice], None], workers: int) -> None:
    """Call `fill` once per block of rows, on up to `workers` threads; exceptions propagate."""
    blocks = [slice(start, min(start + ROWS_PER_BLOCK, n_rows)) for start in range(0, n_rows, ROWS_PER_BLOCK)]
    if workers <= 1 or len(blocks) <= 1:
        for block in blocks:
            fill(block)
        return
    with ThreadPoolExecutor(min(workers, len(blocks))) as pool:
        for done in [pool.submit(fill, block) for block in blocks]:
            done.result()
