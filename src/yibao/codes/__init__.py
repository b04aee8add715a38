"""Code tables and national catalogues as versioned data (1301–1319, 1901)."""
