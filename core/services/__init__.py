"""Services: the only code that changes state. Views and jobs call them; they
take the acting user explicitly and never read Flask request state."""
