"""Django's PostgreSQL backend, with a time limit on the pool's checkout check."""
