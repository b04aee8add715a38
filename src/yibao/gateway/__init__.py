"""The national JSON interface: envelope, authentication, infno → handler table, errors."""
