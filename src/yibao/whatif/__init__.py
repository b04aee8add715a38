"""Policy what-if: a year's settlements replayed under a changed policy with the pure engine, never written back."""
