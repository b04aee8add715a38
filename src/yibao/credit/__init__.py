"""Credit care (信用就医): a partner bank's credit agreement per person, advances of the patient's cash part at discharge, repayment."""
