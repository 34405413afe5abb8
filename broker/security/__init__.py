"""Security shells beside the server (DESIGN section 6): SASL authentication
(``authenticator``) and the authorizer with the helpers every handler calls (``authz``)."""
