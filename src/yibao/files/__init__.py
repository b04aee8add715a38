"""File exchange with institutions: 9101 upload, 9102 download (catalogue files, detail files)."""
