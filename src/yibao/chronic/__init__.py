"""Chronic and special diseases (门诊慢特病): registrations (2503/2504, 5301) and the 1309 catalogue they cite."""
