"""Filings for care away from home (异地就医备案): the person's app, the counter's 2501/2502, and the question settlement asks."""
