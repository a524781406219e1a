"""The maintenance schedule, for rq's cron: ``manage.py rqcron deliveries.cron``
(the Procfile's ``rqcron`` process). Jobs land on the "default" queue, run by
``manage.py rqworker default`` and show in django-rq's admin dashboard."""

from rq import cron

from deliveries import jobs
from scaling import jobs as scaling_jobs

# Dead letters whose MongoDB write was spooled: retry every minute.
cron.register(jobs.flush_deadletter_spool, "default", interval=60)
# Presence of rooms nobody pings any more (the socket reaps live rooms itself).
cron.register(jobs.expire_presence, "default", interval=300)
# Health snapshot: the job result in the dashboard is the report.
cron.register(jobs.delivery_health, "default", cron="*/15 * * * *")
# Retention, nightly.
cron.register(jobs.prune_retention, "default", cron="17 3 * * *")
# Nightly replay of webhooks that died in the last day (a receiver that was
# down for hours); emails are left to moderators.
cron.register(
    jobs.replay_deadletters,
    "default",
    kwargs={"kind": "webhook", "since_hours": 24},
    cron="40 4 * * *",
)
cron.register(scaling_jobs.sample_load, "default", interval=60)
