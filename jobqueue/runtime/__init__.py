"""The running system: the supervisor (``jobrunner work``) and the worker processes it starts,
with everything they run on their way: claim loop, execution, outcomes, heartbeat, listener,
maintenance (rescue and pruning) and the scheduler of recurring tasks."""
