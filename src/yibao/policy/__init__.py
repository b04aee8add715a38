"""Policy as data: parameters per region, insurance type and effective date (OpenFisca style)."""
