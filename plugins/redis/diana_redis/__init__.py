"""Diana plugin diana-redis (work in progress)."""
