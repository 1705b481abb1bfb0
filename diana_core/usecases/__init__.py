"""Use cases: Watcher routing, Collector, FileIndexer — written against ports, never against a backend."""
