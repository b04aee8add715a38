"""医保电子凭证: activation through channels, real-name and real-person checks, family accounts,
dynamic QR codes, decoding at the counter into visit tokens (ecToken), revocation."""
