"""rasterdrop benchmarks: whole processes compared in one run, with peak memory.

``python -m bench`` (``make bench``) prepares the workloads (cached under
``bench/work/``), runs every variant as its own process, interleaving the
repetitions, and writes ``bench/results/latest.json`` and ``latest.md``.
"""
