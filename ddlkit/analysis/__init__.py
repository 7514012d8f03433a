"""Reading runs against theory: the cost formulas, the α–β step-time model, the
single-process reference, measured metrics and sweeps of runs."""
