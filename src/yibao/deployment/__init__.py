"""How this platform runs: production (the default) or demo, recorded in the database itself."""
