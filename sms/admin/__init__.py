"""The SMS pages of the tenant site, one module per resource; portal.admin registers them."""
