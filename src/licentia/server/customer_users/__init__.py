"""Customer users: the people of a vendor's customer who log in to its License Portal."""
