"""Diana plugin diana-dcmdir (work in progress)."""
