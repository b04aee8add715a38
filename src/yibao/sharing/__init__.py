"""保医通: commercial insurers read a person's settlements only under a per-matter authorisation, as FHIR."""
