"""Diana plugin diana-dicom-redis: the ``Redis`` endpoint (JSON item store and file-indexer registry)."""

from diana_redis.endpoint import Redis
from diana_redis.registry import prefix_for_path

__all__ = ["Redis", "prefix_for_path"]
