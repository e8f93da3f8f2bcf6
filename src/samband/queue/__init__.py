"""Many tenants, many workers, one PostgreSQL: the job queue (procrastinate).

* :mod:`.connect`: the queue's database, its schema made once.
* :mod:`.jobs`: what one job does to a tenant (a run, a resync then a run).
* :mod:`.tasks`: the procrastinate app and its tasks; deferring them (:mod:`.enqueue`).
* :mod:`.worker`: ``samband worker --queue``: takes jobs, retries those of dead workers,
  and queues each tenant's scheduled runs.
"""
