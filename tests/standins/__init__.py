"""Stand-ins for outside services the platform talks to (real servers on free ports, not mocks)."""
