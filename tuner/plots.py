"""Pictures of a search: the cells (like the paper's Figure 4) and the curves (Figure 6).

Cells are drawn bottom-up as in Figure 4: the two inputs h_i and h_{i-1} (white) at the
bottom, each block's two operations (yellow) above the states they read, the block's
combine node (green; it *is* the block's output state) above them, and the
concatenation of the cell's output states (pink) on top. Blocks are placed in rows by
depth (1 + the deepest state they read), so every arrow points upwards.

Only matplotlib's object API and the Agg canvas are used (no pyplot): drawing works
headless, in threads, and never changes the caller's matplotlib backend.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasnet_keras.fileio import atomic_path
from nasnet_keras.genotype import NUM_CELL_INPUTS, CellGenotype, Genotype

COLORS = {"input": "#ffffff", "op": "#fff2a8", "combine": "#bfe6a8", "concat": "#f6b8c8"}
COMBINE_LABELS = {"add": "add", "concat": "concat", "add_layernorm": "add+LN", "add_instancenorm": "add+IN"}
INPUT_LABELS = {0: "$h_i$", 1: "$h_{i-1}$"}


def op_label(name: str) -> str:
    """'sep_conv_3x3' -> 'sep 3x3', 'conv_1x7_7x1' -> '1x7 then 7x1', as in the paper's figures."""
    special = {"identity": "identity", "conv_1x3_3x1": "1x3 then 3x1", "conv_1x7_7x1": "1x7 then 7x1",
               "dil_conv_3x3": "dil 3x3", "conv_1x1": "conv 1x1", "conv_3x3": "conv 3x3"}
    if name in special:
        return special[name]
    kind, _, size = name.rpartition("_")
    return f"{kind.replace('_conv', '').replace('_', ' ')} {size}"


def _layout(cell: CellGenotype) -> dict:
    """Node positions: inputs on row 0; a block at depth d has ops on row 2d-1, combine on 2d."""
    depth = {0: 0, 1: 0}
    for b, block in enumerate(cell.blocks):
        depth[NUM_CELL_INPUTS + b] = 1 + max(depth[i] for i in block.inputs)
    max_depth = max(depth.values())
    rows: dict[int, list[int]] = {}
    for b in range(cell.num_blocks):
        rows.setdefault(depth[NUM_CELL_INPUTS + b], []).append(b)
    width = max(2, *(len(blocks) for blocks in rows.values())) * 2.6
    pos: dict[str, tuple[float, float]] = {"s1": (-1.3, 0.0), "s0": (1.3, 0.0)}
    for d, blocks in rows.items():
        for j, b in enumerate(blocks):
            x = (j - (len(blocks) - 1) / 2) * 2.6
            pos[f"op{b}a"] = (x - 0.62, 2 * d - 1.0)
            pos[f"op{b}b"] = (x + 0.62, 2 * d - 1.0)
            pos[f"s{NUM_CELL_INPUTS + b}"] = (x, 2.0 * d)
    pos["concat"] = (0.0, 2.0 * max_depth + 1.2)
    return {"pos": pos, "width": width, "height": 2.0 * max_depth + 1.2}


def _node(ax, xy, text, color, fontsize=8):
    return ax.text(*xy, text, ha="center", va="center", fontsize=fontsize, zorder=3,
                   bbox=dict(boxstyle="round,pad=0.35", fc=color, ec="#333333", lw=0.8))


def _arrow(ax, source, target, color="#555555"):
    # Clipping the path at both nodes' box outlines (patchA/patchB, evaluated at draw
    # time) makes arrows start and end exactly at the boxes whatever the figure's scale.
    # The boxes are positioned when their text is drawn, so arrows are drawn after them
    # (higher zorder); being clipped at the outlines they never cover a box.
    ax.annotate("", xy=target.get_position(), xytext=source.get_position(), zorder=4,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=0.8, shrinkA=0, shrinkB=1,
                                patchA=source.get_bbox_patch(), patchB=target.get_bbox_patch()))


def draw_cell(ax, cell: CellGenotype, title: str | None = None) -> None:
    """Draw one cell into a matplotlib Axes."""
    layout = _layout(cell)
    pos = layout["pos"]
    nodes = {}
    for state, label in INPUT_LABELS.items():
        nodes[f"s{state}"] = _node(ax, pos[f"s{state}"], label, COLORS["input"], fontsize=10)
    for b, block in enumerate(cell.blocks):
        for side, op in zip("ab", block.ops):
            nodes[f"op{b}{side}"] = _node(ax, pos[f"op{b}{side}"], op_label(op), COLORS["op"])
        x, y = pos[f"s{NUM_CELL_INPUTS + b}"]
        nodes[f"s{NUM_CELL_INPUTS + b}"] = _node(ax, (x, y), COMBINE_LABELS.get(block.combine, block.combine),
                                                 COLORS["combine"])
        ax.text(x + 0.45, y + 0.32, f"$s_{{{NUM_CELL_INPUTS + b}}}$", fontsize=7, color="#333333", zorder=5)
    nodes["concat"] = _node(ax, pos["concat"], "concat", COLORS["concat"], fontsize=9)
    for b, block in enumerate(cell.blocks):
        for side, state in zip("ab", block.inputs):
            _arrow(ax, nodes[f"s{state}"], nodes[f"op{b}{side}"])
            _arrow(ax, nodes[f"op{b}{side}"], nodes[f"s{NUM_CELL_INPUTS + b}"])
    for state in cell.concat:
        _arrow(ax, nodes[f"s{state}"], nodes["concat"], color="#b0526b")
    half = max(layout["width"], 5.2) / 2
    ax.set_xlim(-half - 0.4, half + 0.4)
    ax.set_ylim(-0.8, layout["height"] + 0.8)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=11)


def plot_genotype(genotype: Genotype, path: str, title: str | None = None) -> str:
    """Write a PNG of the Normal and Reduction cells side by side; returns `path`."""
    heights = [_layout(cell)["height"] for cell in (genotype.normal, genotype.reduction)]
    widths = [max(_layout(cell)["width"], 5.2) for cell in (genotype.normal, genotype.reduction)]
    fig = Figure(figsize=(1.05 * sum(widths) + 1.0, 0.85 * max(heights) + 2.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": widths})
    draw_cell(axes[0], genotype.normal, "Normal Cell")
    draw_cell(axes[1], genotype.reduction, "Reduction Cell")
    fig.suptitle(title or f"{genotype.name or 'Genotype'} [{genotype.id}]", fontsize=12)
    _save(fig, path)
    return path


def plot_search_curves(
    curves: Mapping[str, Mapping[int, Sequence[float]]],
    path: str,
    title: str = "Architecture search: held-out accuracy vs. models sampled",
    ylabel: str = "held-out accuracy",
) -> str:
    """Write a Figure-6-style PNG: per strategy, one line per top-k statistic vs trials.

    `curves` maps a strategy label to `{k: values}` as from `tuner.history.curves`: the
    mean accuracy of the top-k unique models among the first n sampled, NaN where fewer
    than k were scored (those points are not drawn).
    """
    fig = Figure(figsize=(7.5, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for s, (label, by_k) in enumerate(sorted(curves.items())):
        for j, (k, values) in enumerate(sorted(by_k.items())):
            xs = [n + 1 for n, v in enumerate(values) if not math.isnan(v)]
            ys = [v for v in values if not math.isnan(v)]
            if not xs:
                continue
            name = f"{label.upper() if len(label) <= 6 else label} top {k}" + (" (best so far)" if k == 1 else " mean")
            ax.plot(xs, ys, styles[j % len(styles)], color=palette[s % len(palette)], lw=1.6,
                    marker="o" if len(xs) <= 30 else None, ms=3, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of models sampled")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center", transform=ax.transAxes)
    _save(fig, path)
    return path


def _save(fig: Figure, path: str) -> None:
    with atomic_path(path) as temporary:  # readers (a browser, another worker) never see half a PNG
        fig.savefig(temporary, dpi=110, bbox_inches="tight")
