"""Side-by-side benchmarks of the pipelines product against floors and peers.

Run ``python -m bench`` (full, < 15 min on 2 cores) or ``python -m bench --smoke`` (tiny sizes,
< 2 min). Every figure is measured in the same run as the figure it is compared with, in fresh
child processes, repeated and reduced to a median; the report is a table of ratios.
"""
