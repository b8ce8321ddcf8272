"""coachflow handlers: one module per Lambda entry point over a pure core."""
