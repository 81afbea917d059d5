"""One router module per API family; each only parses requests and shapes responses."""
