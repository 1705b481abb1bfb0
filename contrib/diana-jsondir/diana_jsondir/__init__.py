"""Example third-party Diana plugin: a folder of JSON-serialized Dixels."""

from diana_jsondir.endpoint import JsonDir

__all__ = ["JsonDir"]
