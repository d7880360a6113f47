"""Benchmarks for jobqueue (issue 6): its throughput, latency, claim cost and memory, and the
same workloads on comparable libraries, written to docs/performance.md.

Run ``python -m benchmarks --help``. Nothing here is imported by jobqueue itself; the package
lives outside ``jobqueue/`` so the wheel does not ship it.
"""
