"""Interactive widgets: the experiment panel."""
from ddlkit.widgets.panel import ExperimentPanel

__all__ = ["ExperimentPanel"]
