"""Weight initialisation (filled in by the init work)."""
