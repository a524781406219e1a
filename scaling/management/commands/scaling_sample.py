import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from scaling import conf
from scaling.services import load_sample_record


class Command(BaseCommand):
    help = (
        "Record this node's load for the current minute in MongoDB load_samples "
        "(run every minute on each web node; the rq cron job does it where rq runs)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", help="node name (default SCALING_NODE_NAME or host name)")
        parser.add_argument("--dry-run", action="store_true", help="measure, print, write nothing")

    def handle(self, *args, **options) -> None:
        node = options["node"] or conf.node_name()
        if not node or ":" in node:
            raise CommandError(f"--node {node!r}: give a non-empty name without ':'")
        try:
            doc = load_sample_record(node=node, write=not options["dry_run"])
        except PyMongoError as exc:
            raise CommandError(f"MongoDB is unreachable, nothing recorded: {exc}") from exc
        except RedisError as exc:
            raise CommandError(f"Redis is unreachable, nothing recorded: {exc}") from exc
        doc["minute"] = doc["minute"].isoformat()
        doc["written"] = not options["dry_run"]
        self.stdout.write(json.dumps(doc, indent=2, sort_keys=True))
