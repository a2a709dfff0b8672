"""Programs the bench runs as child processes, one measured thing each.

Each imports only what its own measurement needs, so that its time and memory are its own.
"""
