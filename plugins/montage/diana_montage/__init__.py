"""Diana plugin diana-montage (work in progress)."""
