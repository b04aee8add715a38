"""E-prescription circulation (电子处方流转): 7101–7105 for the prescribing hospital, 7201–7206 for the pharmacy."""
