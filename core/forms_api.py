"""Form pieces a plugin may use in its settings form."""
from wtforms import PasswordField


class SecretField(PasswordField):
    """A setting stored encrypted at rest and never shown back in full. Leaving it
    empty on save keeps the stored value."""

    secret = True
