"""The live progress line of ``python -m benchmarks``.

On a terminal: one status line, never wider than the terminal (its width is read again at every
update, so a resized window is followed), drawn by ``tqdm`` (the ``bench`` extra) or, without it,
written with ``shutil.get_terminal_size`` and cut to fit. It is cleared before a case's table is
printed, so the tables scroll above it. Elsewhere (a log file, CI): a line per finished case.
"""

from __future__ import annotations

import shutil
import sys
import time


def _width(stream) -> int:
    """Columns available on ``stream``'s terminal, one spare so that nothing wraps."""
    return max(20, shutil.get_terminal_size().columns - 1)


class Progress:
    """``progress(msg)``: what is being done now; ``progress.step(label)``: a case finished."""

    def __init__(self, total: int, stream=None, use_tqdm: bool | None = None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.done = total, 0
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.bar = None
        if self.tty and use_tqdm is not False:
            try:
                from tqdm import tqdm
            except ImportError:
                if use_tqdm:
                    raise
            else:
                # sizes from shutil, which falls back to 80 x 24 where a terminal reports 0 x 0
                # (tqdm would then draw nothing)
                self.bar = tqdm(total=total, file=self.stream, leave=False, ncols=_width(stream),
                                nrows=shutil.get_terminal_size().lines, dynamic_ncols=False,
                                mininterval=0.2,
                                bar_format="{n_fmt}/{total_fmt} {elapsed} |{bar:12}| {desc}")

    def __call__(self, msg: str) -> None:
        if not self.tty:
            return
        if self.bar is not None:
            self.bar.ncols = _width(self.stream)
            self.bar.set_description_str(msg, refresh=True)
            return
        elapsed = time.perf_counter() - self.start
        line = f"{self.done}/{self.total} {elapsed:.0f}s {msg}"
        width = _width(self.stream)
        # cut to the terminal, padded to clear what a longer previous line left
        self.stream.write("\r" + line[:width].ljust(width))
        self.stream.flush()

    def step(self, label: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.clear()
            if self.done >= self.total:
                self.bar.close()
        elif self.tty:
            self.stream.write("\r" + " " * _width(self.stream) + "\r")
            self.stream.flush()
        else:
            elapsed = time.perf_counter() - self.start
            print(f"[{self.done}/{self.total}] {elapsed:.0f}s {label}", file=self.stream,
                  flush=True)
