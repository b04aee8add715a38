"""The settlement calculation: fee lines + policy + year-to-date totals → fund splits. No I/O."""
