"""Tools around the course: ``doctor`` (is this machine ready?) and its checks."""
