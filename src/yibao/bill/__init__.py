"""Medical e-bills (医疗收费电子票据): issued for every settlement, signed with SM2, verified by anyone (docs/bills.md)."""
