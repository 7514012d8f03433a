"""Tools around the course: ``doctor`` (is this machine ready?), the platform facts and
advice it gives (``machine``), its process listing on every platform (``procs``) and the jobs
its checks run on real ranks (``checks``)."""
