"""Progress bars for long loops, in the form each place a person reads them wants.

- In JupyterLab (a kernel with ipywidgets): a live progress widget (``tqdm.auto``).
- On a terminal: tqdm's text bar on stderr.
- In a headless run (``PROGRESS_VARIABLE=lines``, which the series' runner sets for its kernels):
  no live bar, one plain line when the loop ends ("decoding images at 128 px: 12,611 in 31 s"),
  since the executed notebook and its HTML page keep every redraw of a text bar as a line of its
  own and show a widget only as its first, empty state.
"""

from __future__ import annotations

import os
import time

PROGRESS_VARIABLE = "NBLIB_PROGRESS"
LINES = "lines"


class LineBar:
    """A bar that draws nothing while it runs and prints one line when closed."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.n = total, desc, 0
        self._start = time.perf_counter()
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        seconds = time.perf_counter() - self._start
        done = f"{self.n:,}" if self.n == self.total else f"{self.n:,} of {self.total:,}"
        print(f"{self.desc}: {done} in {seconds:.0f} s", flush=True)

    def __enter__(self) -> LineBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(total: int, desc: str, leave: bool = True):
    """A progress bar over ``total`` steps (``update()``, ``close()``, usable in ``with``)."""
    if os.environ.get(PROGRESS_VARIABLE) == LINES:
        return LineBar(total, desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=leave)
