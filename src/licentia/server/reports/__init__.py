"""Read models over several contexts: the vendor dashboard, a customer's overview."""
