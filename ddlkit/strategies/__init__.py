"""Training strategies, one file each; :mod:`ddlkit.modes` maps mode names to them."""
