"""Views of results for people: plotly charts, comparison plots and the side-by-side table."""

from workbench.views.charts import charts_for, confusion_matrix, plot_confusion, plot_cost_quality, plot_latency
from workbench.views.comparison_plots import plot_diff, plot_flips, plot_means
from workbench.views.drift import plot_drift, plot_drift_metric, plot_feedback
from workbench.views.plots import plot_scores
from workbench.views.redteam import plot_attack_heatmap
from workbench.views.side_by_side import SideBySide, side_by_side

__all__ = [
    "SideBySide",
    "charts_for",
    "confusion_matrix",
    "plot_confusion",
    "plot_attack_heatmap",
    "plot_cost_quality",
    "plot_diff",
    "plot_drift",
    "plot_drift_metric",
    "plot_feedback",
    "plot_flips",
    "plot_latency",
    "plot_means",
    "plot_scores",
    "side_by_side",
]
