"""Built-in products (nameplate, ring, box) and the ``Product`` base plugins subclass."""
