"""Channel adapters: each turns its platform's messages into `Incoming` and shows `Reply`."""
