"""Code the benchmark processes run (``benchmarks/run_all.py``); not part of the course.

Worker jobs must live in an importable module: a function defined in a script's
``__main__`` cannot be sent to a forkserver or spawned worker.

- :mod:`ddlkit.bench.jobs`: rank jobs for :func:`ddlkit.runtime.run_ranks` (torch DDP
  training, all-reduce timings);
- :mod:`ddlkit.bench.ray_ps`: an actor-based parameter server written with Ray (optional);
- :mod:`ddlkit.bench.memory`: peak memory of a run's worker processes, read from /proc;
- :mod:`ddlkit.bench.rates`: steady training rates read off a ``RunResult``;
- :mod:`ddlkit.bench.coldstart`: ``python -m ddlkit.bench.coldstart`` times ``run()`` to its
  first event in a fresh process, then again warm.
- :mod:`ddlkit.bench.netns`: two network namespaces joined by a shaped veth pair (root,
  Linux); a torchrun run across them against the emulation and the α–β prediction
  (``benchmarks/bench_netns.py``, ``tests/test_netns.py``), with
  :mod:`ddlkit.bench.netprobe`, the link's latency and throughput in plain Python.
"""
