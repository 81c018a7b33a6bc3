"""Draw docs/images/techniques_<name>.png: how each technique builds (or stores) one row."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

IMAGES = Path(__file__).parent / "images"


def _box(ax, x, y, w, h, text, color):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)


def draw_cce(ax):
    for c in range(3):
        x = c * 3.3
        _box(ax, x, 2, 1.4, 1.5, f"clusters\nchunk {c}", "#9ecae1")
        _box(ax, x + 1.6, 2, 1.4, 1.5, f"hashed\nchunk {c}", "#fdd0a2")
        ax.annotate("", (x + 1.5, 1.0), (x + 0.7, 2), arrowprops={"arrowstyle": "->"})
        ax.annotate("", (x + 1.5, 1.0), (x + 2.3, 2), arrowprops={"arrowstyle": "->"})
        _box(ax, x + 0.5, 0.3, 2, 0.7, "sum", "#c7e9c0")
    ax.text(0, 4, "id i: assign_c[i] (int32, k-means) + h_c(i) per chunk; chunks concatenated")


def draw_tt(ax):
    for k, (text, w) in enumerate([("G1[i1]\nd1 x r", 1.2), ("G2[i2]\nr x d2 x r", 2), ("G3[i3]\nr x d3", 1.2)]):
        _box(ax, 0.5 + k * 3, 2, w, 1.3, text, "#9ecae1")
    ax.text(0.5, 0.8, "row(i) = contraction over the ranks -> d1*d2*d3 values;  i = (i1*n2 + i2)*n3 + i3")
    ax.text(0.5, 4, "three small cores instead of an n x d table")


def draw_robe(ax):
    for e in range(20):
        _box(ax, e * 0.5, 2, 0.5, 0.6, str(e), "#f0f0f0")
    for start, color in [(3, "#9ecae1"), (17, "#fdd0a2")]:
        for z in range(4):
            _box(ax, ((start + z) % 20) * 0.5, 2, 0.5, 0.6, str((start + z) % 20), color)
    ax.text(0, 3.2, "one shared array; block j of id i starts at h(i, j) and reads Z=4 in a ring")
    ax.text(0, 1.2, "blue: block starting at 3; orange: block starting at 17 wraps to 0")


def draw_hash_embedding(ax):
    for b in range(8):
        _box(ax, b * 0.9, 2.2, 0.9, 0.7, f"pool {b}", "#f0f0f0")
    for b, color in [(1, "#9ecae1"), (6, "#fdd0a2")]:
        _box(ax, b * 0.9, 2.2, 0.9, 0.7, f"pool {b}", color)
    _box(ax, 7.8, 2.2, 2.2, 0.7, "weights p_i (k per id)", "#c7e9c0")
    ax.text(0, 3.4, "k hashes pick k shared pool vectors; learned per-id weights mix them")
    ax.text(0, 1.2, "row(i) = p_i[0] * pool[h_0(i)] + p_i[1] * pool[h_1(i)]   (k = 2 here)")


def draw_dhe(ax):
    _box(ax, 0.2, 1.8, 1.6, 1.2, "id i", "#f0f0f0")
    _box(ax, 2.4, 1.8, 2.0, 1.2, "k hashes ->\nk values in [-1, 1]", "#fdd0a2")
    _box(ax, 5.0, 1.8, 2.2, 1.2, "MLP\n(Dense, ReLU/Mish)", "#9ecae1")
    _box(ax, 7.8, 1.8, 2.0, 1.2, "row(i), width d", "#c7e9c0")
    for x0, x1 in [(1.8, 2.4), (4.4, 5.0), (7.2, 7.8)]:
        ax.annotate("", (x1, 2.4), (x0, 2.4), arrowprops={"arrowstyle": "->"})
    ax.text(0.2, 3.6, "no table at all: the id is hashed into features a network decodes")


def draw_mlet(ax):
    _box(ax, 0.2, 1.6, 1.4, 2.0, "n x 64\ntable", "#9ecae1")
    _box(ax, 2.0, 2.2, 1.4, 0.8, "64 x d\nkernel", "#fdd0a2")
    ax.text(3.7, 2.5, "=  fold at export  =>", va="center")
    _box(ax, 6.6, 1.6, 0.9, 2.0, "n x d\ntable", "#c7e9c0")
    ax.text(0.2, 4.0, "train wide (a table projected down), serve the product: a plain n x d table")


def draw_int4(ax):
    for c in range(8):
        _box(ax, c * 0.8, 2.2, 0.8, 0.7, f"{(c * 5) % 16 - 8:+d}", "#f0f0f0")
    _box(ax, 6.8, 2.2, 1.6, 0.7, "scale (fp32)", "#fdd0a2")
    ax.text(0, 3.4, "a row of d values -> d 4-bit integers, two per byte, + one float32 scale")
    ax.text(0, 1.2, "bytes per row: ceil(d / 2) + 4   (int8: d + 4;  float32: 4 d)")


def main() -> None:
    """Write one PNG per technique."""
    IMAGES.mkdir(exist_ok=True)
    for name, draw in [
        ("cce", draw_cce),
        ("tt_rec", draw_tt),
        ("robe", draw_robe),
        ("hash_embedding", draw_hash_embedding),
        ("dhe", draw_dhe),
        ("mlet", draw_mlet),
        ("int4", draw_int4),
    ]:
        fig, ax = plt.subplots(figsize=(10, 3))
        draw(ax)
        ax.set_xlim(-0.2, 10.2)
        ax.set_ylim(0, 4.5)
        ax.axis("off")
        fig.savefig(IMAGES / f"techniques_{name}.png", dpi=80, bbox_inches="tight")
        plt.close(fig)


if __name__ == "__main__":
    main()
