"""yibao: an open medical-insurance information platform speaking the national interface."""

__version__ = "0.1.0"
