"""``sgtheory sweep``'s phase-diagram PNG, drawn by a child process that starts with the command.

Importing matplotlib and drawing a first figure (fonts, tick labels) are a large share of a short sweep
command's time (``benchmarks/sweep_throughput.py``). So the command starts this module as a child Python
first thing, and the child does that work while the parent imports JAX and runs the sweep and the theory:

1. the parent sends the grid and the title (one JSON line on the child's stdin) once its input is valid;
   the child builds the figure with an empty grid and draws it once;
2. once ``sweep.npz`` is written the parent sends the npz and PNG paths; the child fills in the verdicts,
   the theory's boundary, its undetermined cells, the regions of different fixed points and the mismatches
   of the first seed and init scale (the title says which) from the npz, writes the PNG (atomically,
   :func:`sgtheory.io.savefig`) and exits.

The parent kills a child it never asked to draw (bad input, a failure, an interrupt); the child writes
nothing before it is asked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: Fixed margins (fractions of the style's 5 × 3.6 in figure) that fit the labels and a title of up to ~90
#: characters: one draw, where ``bbox_inches="tight"`` draws the figure twice.
MARGINS = dict(left=0.12, right=0.95, bottom=0.13, top=0.92)
DPI = 150


class PlotChild:
    """The parent's handle on the child (a context manager: leaving it ends a child that was never asked)."""

    def __init__(self):
        self._proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def prepare(self, alphas, betas, title: str) -> None:
        """Send the grid's coordinates and the title: the child draws the empty figure meanwhile."""
        request = {"alphas": [float(a) for a in alphas], "betas": [float(b) for b in betas], "title": title}
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:  # the child has died: draw() reports its error
            pass

    def draw(self, npz, png) -> None:
        """Have the child draw ``png`` from the sweep file ``npz`` (after :meth:`prepare`); wait for it.
        A failure raises RuntimeError with the child's last error line."""
        _, err = self._proc.communicate(json.dumps({"npz": str(npz), "png": str(png)}) + "\n")
        if self._proc.returncode != 0:
            last = (err or "").strip().splitlines()[-1:] or [f"exit code {self._proc.returncode}"]
            raise RuntimeError(f"phase diagram {png}: {last[0]}")

    def close(self) -> None:
        """End a child that was never asked to draw (it has written nothing)."""
        if self._proc.returncode is None:
            self._proc.kill()
            self._proc.communicate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _request() -> dict | None:
    line = sys.stdin.readline()
    return json.loads(line) if line.strip() else None


def _theory_layers(d: dict):
    """(ρ, keyword layers) of the first seed and init scale from a sweep file: the boundary (ρ the verdict
    rests on, or the single-point ρ), the mismatches, the undetermined cells and the fixed-point kinds."""
    import numpy as np

    from sgtheory.verdicts import PREDICTIONS

    first = lambda name: d[name][0, 0] if name in d else None
    rho = first("rho_eff") if "rho_eff" in d else d.get("rho")
    if rho is not None and rho.ndim == 4:
        rho = rho[0, 0]
    kw = {"mismatch": first("mismatch")}
    if "verdict" in d:
        verdict = first("verdict")
        kw["undetermined"] = verdict == PREDICTIONS.index("undetermined")
        kw["predicted"] = np.where(kw["undetermined"], np.nan, (verdict == PREDICTIONS.index("converges")) * 1.0)
    if "fixed_point" in d and "fp_kind" in d and d["fp_kind"].size:
        index = first("fixed_point")
        kw["kinds"] = np.where(index >= 0, d["fp_kind"][np.clip(index, 0, None)], -1)
        kw["kind_names"] = KIND_NAMES
    return rho, kw


KIND_NAMES = ("optimum", "constant predictor", "other")  # as sgtheory.linear.predict.KINDS (no JAX import here)


def _serve() -> int:
    import numpy as np

    from sgtheory.io import load_npz, savefig
    from sgtheory.plotting import figure
    from sgtheory.plotting.phase import fill_phase_axes, phase_axes

    grid = _request()
    if grid is None:
        return 0
    a, b = np.asarray(grid["alphas"]), np.asarray(grid["betas"])
    with figure(dpi=DPI) as (fig, ax):
        fig.subplots_adjust(**MARGINS)
        _, ax, mesh = phase_axes(a, b, ax=ax, title=grid["title"])
        fig.canvas.draw()  # the first draw's costs (fonts, tick labels), while the parent computes
        paths = _request()
        if paths is None:
            return 0
        d = load_npz(paths["npz"], what="sweep file")
        rho, layers = _theory_layers(d)
        fill_phase_axes(ax, mesh, a, b, d["status"][0, 0], rho, **layers)
        savefig(fig, paths["png"], dpi=DPI, bbox_inches=None)
    return 0


if __name__ == "__main__":
    os.nice(10)  # CPU time the parent leaves idle (its sweep runs one thread per core)
    code = _serve()
    sys.stderr.flush()
    os._exit(code)  # the PNG is written and closed: skip matplotlib's teardown (the parent is waiting)
