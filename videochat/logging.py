"""Structured logging: every record is key/value, JSON lines in production."""

import logging.config

import structlog

# rq logs five INFO lines per job (dequeued, completed, "Job OK", "result is kept",
# plus rq cron's "Enqueued"), and registry cleaning between jobs: with a job a
# minute that drowned everything else. Only the completion line stays (failures
# are WARNING and above, always kept).
_RQ_NOISE = {
    "rq.worker": (
        "Worker %s: cleaning registries",
        "Worker %s: cleaning group registries",
        "Worker %s: %s: %s",  # the job's start, and "Job OK"
        "Worker %s: job %s result is kept",
    ),
    "rq.cron": ("Enqueued job ",),
}


class RqOneLinePerJob(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        noise = _RQ_NOISE.get(record.name)
        if noise is None or record.levelno > logging.INFO:
            return True
        return not (isinstance(record.msg, str) and record.msg.startswith(noise))


def configure_logging(*, level: str, json: bool) -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    # Tracebacks in plain text: structlog's default (rich, with locals) took about 2 s
    # of CPU per exception on the 2-core test machine, rendered inside daphne's one
    # event loop. With Redis gone, every socket logs one or two, so the loop stood
    # still for seconds at a time and closes, pongs and timers waited behind it
    # (tests/test_socket_redis_down_live.py). Plain text takes about 5 ms.
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structured": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        # JSON has no traceback renderer of its own: without this a
                        # line said only "exc_info": true, the traceback was lost.
                        *([structlog.processors.format_exc_info] if json else []),
                        renderer,
                    ],
                    "foreign_pre_chain": shared,
                }
            },
            "filters": {"rq_one_line_per_job": {"()": RqOneLinePerJob}},
            "handlers": {
                "console": {
                    "class": "logging.StreamHandler",
                    "formatter": "structured",
                    "filters": ["rq_one_line_per_job"],
                }
            },
            "root": {"handlers": ["console"], "level": level},
            "loggers": {
                "django.channels.server": {"level": "WARNING"},
                "daphne": {"level": "WARNING"},
            },
        }
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
