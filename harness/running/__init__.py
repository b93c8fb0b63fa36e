"""Running cells: the scheduler and its rows, one cell's child process, run dirs, progress, merging shards (executors/ holds how jobs are dispatched)."""
