"""Learning-rate schedules (filled in by the scheduler work)."""
