"""Diana plugin diana-dicom-celery: Collector / FileIndexer units on Celery workers over Redis (``CeleryExecutor``),
a Redis ``JobState`` shared by every machine of a job, and PACS protection enforced across workers."""

from diana_celery.executor import CeleryExecutor

__all__ = ["CeleryExecutor"]
