"""One module per notebook, named like it (``notebooks/06_choosing_a_strategy.ipynb`` uses
:mod:`ddlkit.lessons.choosing_a_strategy`). A lesson module holds what one notebook needs
beyond the engine: its tables, studies and small plots. Lessons import the engine; the
engine never imports a lesson."""
